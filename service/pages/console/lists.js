/* Lists: a filter form whose values live in the URL, and pages by next_cursor; a
 * `limit` in the URL (the API's page size, 1 to 200) is kept across pages and filters.
 */

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { go, href } from "./router.js";

/** The URL parameters as a plain object. */
export function paramsOf(route) {
  return Object.fromEntries(route.params.entries());
}

/**
 * A filter form for a list: fields (built with dom.field, named as the URL parameters);
 * applying it puts the values in the URL (first page), so the view can be bookmarked.
 */
export function filters(route, fieldNodes) {
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": t("filters") },
    fieldNodes,
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("apply_filters")))
  );
  for (const control of form.querySelectorAll("input, select")) {
    const current = route.params.get(control.name);
    if (current !== null && control.type !== "checkbox") control.value = current;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = { limit: route.params.get("limit") };
    for (const control of form.querySelectorAll("input, select")) {
      if (control.value.trim()) params[control.name] = control.value.trim();
    }
    go(href(route.view, route.id, params));
  });
  return form;
}

/** "First page" and "Next page" links: the cursor is a URL parameter like any filter. */
export function pager(route, nextCursor) {
  const params = paramsOf(route);
  const links = [];
  if (params.cursor) {
    const first = Object.assign({}, params);
    delete first.cursor;
    links.push(h("a", { href: href(route.view, route.id, first), "data-nav": true, class: "button" }, t("first_page")));
  }
  if (nextCursor) {
    links.push(h("a", { href: href(route.view, route.id, Object.assign({}, params, { cursor: nextCursor })), "data-nav": true, class: "button", rel: "next" }, t("next_page")));
  }
  return links.length ? h("nav", { class: "pager", "aria-label": t("pages") }, links) : null;
}

/** The list query for the API: the URL's filters, cursor and limit, as they are. */
export function listQuery(route, names) {
  const query = {};
  for (const name of [...names, "cursor", "limit"]) {
    const given = route.params.get(name);
    if (given) query[name] = given;
  }
  return query;
}
