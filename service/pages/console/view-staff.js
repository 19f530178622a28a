/* Staff (bureau_admin): invite (the setup link shown once), change role, disable. */

import { api, listAll } from "./api.js";
import { clearErrors, copyButton, field, formProblem, h, say, showProblem, table, value, viewFrame } from "./dom.js";
import { problemText, t } from "./i18n.js";
import { STAFF_ROLES, options, status } from "./labels.js";
import { pager } from "./lists.js";

export async function render(context) {
  const { route, staff: me } = context;
  const [answer, partners] = await Promise.all([
    api("GET", "/v1/staff", { query: { cursor: route.params.get("cursor") || undefined } }),
    listAll("/v1/partners", {}),
  ]);
  const partnerList = partners.ok ? partners.data.items.filter((p) => p.status !== "terminated") : [];
  const partnerName = Object.fromEntries(partnerList.map((p) => [p.id, p.name]));
  const invite = inviteForm(partnerList, context);
  if (!answer.ok) return viewFrame("nav_staff", invite, h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const message = h("p", { class: "form-problem", role: "alert", tabindex: "-1", hidden: true });
  const done = h("p", { class: "ok", id: "staff-done", role: "status", hidden: true });
  /** PATCH the account; `said` is what the view says once it is drawn again. */
  const change = async (person, body, said) => {
    const changed = await api("PATCH", "/v1/staff/" + encodeURIComponent(person.id), { body: body });
    if (!changed.ok) return say(message, problemText(changed.problem), "problem");
    await context.rerender();
    const shown = document.getElementById("staff-done");
    if (shown && said) say(shown, said, "ok");
  };
  const changeRole = (person, select) => {
    const name = person.display_name || person.email;
    const from = t("role_" + person.role);
    const to = t("role_" + select.value);
    // A role change signs the person out at once: asked first (docs/staff.md).
    if (!window.confirm(t("confirm_role_change", { name: name, from: from, to: to }))) {
      select.value = person.role;
      return;
    }
    change(person, { role: select.value }, t("role_changed", { name: name, role: to }));
  };
  const rows = table(
    [
      { label: t("display_name"), cell: (s) => s.display_name || "—" },
      { label: t("email"), cell: (s) => s.email },
      { label: t("staff_role"), cell: (s) => {
          if (s.id === me.id || s.status === "disabled" || s.role === "partner_manager") return t("role_" + s.role) + (s.partner_id ? " · " + (partnerName[s.partner_id] || s.partner_id) : "");
          const select = h("select", { "aria-label": t("staff_change_role_of", { name: s.email }) }, STAFF_ROLES.filter((r) => r !== "partner_manager").map((r) => h("option", { value: r, selected: r === s.role }, t("role_" + r))));
          select.addEventListener("change", () => changeRole(s, select));
          return select;
        } },
      { label: t("status"), cell: (s) => h("span", { class: "status status-" + s.status }, status(s.status)) },
      { label: t("actions"), cell: (s) => s.id === me.id ? "" : s.status === "disabled"
          ? h("button", { type: "button", onclick: () => change(s, { status: "active" }) }, t("staff_enable"), h("span", { class: "visually-hidden" }, " " + s.email))
          : h("button", { type: "button", class: "danger", onclick: () => { if (window.confirm(t("confirm_disable_staff", { name: s.email }))) change(s, { status: "disabled" }); } }, t("staff_disable"), h("span", { class: "visually-hidden" }, " " + s.email)) },
    ],
    answer.data.items,
    t("nav_staff")
  );
  return viewFrame("nav_staff", invite, message, done, rows, pager(route, answer.data.next_cursor));
}

function inviteForm(partners, context) {
  const partnerField = field({ name: "partner_id", label: t("partner"), type: "select", options: [{ value: "", label: t("choose") }, ...partners.map((p) => ({ value: p.id, label: p.name }))] });
  const form = h("form", { class: "panel", id: "invite-form", novalidate: true },
    h("h2", {}, t("staff_invite")),
    h("div", { class: "row" },
      field({ name: "email", label: t("email"), type: "email", required: true, attrs: { autocomplete: "off", spellcheck: "false" } }),
      field({ name: "display_name", label: t("display_name"), attrs: { maxlength: 100 } }),
      field({ name: "role", label: t("staff_role"), type: "select", options: options(STAFF_ROLES, (r) => t("role_" + r)) }),
      partnerField),
    formProblem(),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("staff_invite"))),
    h("div", { id: "invite-link", "aria-live": "polite" }));
  const showPartner = () => { partnerField.hidden = value(form, "role") !== "partner_manager"; };
  form.addEventListener("change", showPartner);
  setTimeout(showPartner, 0);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = { email: value(form, "email"), role: value(form, "role") };
    if (value(form, "display_name")) body.display_name = value(form, "display_name");
    if (body.role === "partner_manager") body.partner_id = value(form, "partner_id");
    const errors = [];
    if (!body.email) errors.push({ field: "email", message: t("required") });
    if (body.role === "partner_manager" && !body.partner_id) errors.push({ field: "partner_id", message: t("required") });
    if (errors.length) return showProblem(form, { code: "validation_error", errors: errors });
    const answer = await api("POST", "/v1/staff", { body: body });
    if (!answer.ok) return showProblem(form, answer.problem);
    await context.rerender();
    const target = document.getElementById("invite-link");
    const link = new URL(answer.data.setup_url, location.origin).href;
    if (target) target.replaceChildren(h("div", { class: "once", role: "alert" },
      h("p", { class: "warn" }, t("invite_once_warning", { email: body.email })),
      h("p", {}, h("label", { for: "invite-url" }, t("invite_link")), " ", h("input", { id: "invite-url", readonly: true, value: link, class: "secret" }), " ", copyButton(link))));
  });
  return form;
}
