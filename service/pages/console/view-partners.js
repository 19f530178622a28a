/* Partners (bureau): search, enrol, activate, suspend, terminate; and a partner's keys
 * for its tills: issue (the key shown once, with a copy button), list, revoke.
 * A partner_manager sees its own partner only (/console/partners/<own id>).
 */

import { api } from "./api.js";
import { clearErrors, copyButton, field, formProblem, formatTime, h, say, showProblem, table, value, viewFrame } from "./dom.js";
import { problemText, t } from "./i18n.js";
import { PARTNER_CATEGORIES, options, partnerCategory, status } from "./labels.js";
import { filters, listQuery, pager } from "./lists.js";
import { nextStatuses, statuses } from "./model.js";
import { can } from "./roles.js";
import { go, href } from "./router.js";

const ACTION = { active: "activate", suspended: "suspend", terminated: "terminate" };

export async function render(context) {
  const { staff, route } = context;
  if (staff.role === "partner_manager") {
    if (route.id !== staff.partner_id) {
      go(href("partners", staff.partner_id), { replace: true });
      return [];
    }
  }
  if (route.id === "new") return enrolPage();
  if (route.id) return detail(context);
  return list(context);
}

async function list(context) {
  const { staff, route } = context;
  const answer = await api("GET", "/v1/partners", { query: listQuery(route, ["q", "status", "category"]) });
  const filterForm = filters(route, [
    field({ name: "q", label: t("search_name"), type: "search" }),
    field({ name: "status", label: t("status"), type: "select", options: options(statuses("partner"), status, "any") }),
    field({ name: "category", label: t("category"), type: "select", options: options(PARTNER_CATEGORIES, partnerCategory, "any") }),
  ]);
  const enrol = can(staff, "partners.write") ? h("p", {}, h("a", { class: "button primary", href: href("partners", "new"), "data-nav": true }, t("partner_enrol"))) : null;
  if (!answer.ok) return viewFrame("nav_partners", enrol, filterForm, h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const rows = table(
    [
      { label: t("name"), cell: (p) => h("a", { href: href("partners", p.id), "data-nav": true }, p.name) },
      { label: t("category"), cell: (p) => partnerCategory(p.category) },
      { label: t("status"), cell: (p) => h("span", { class: "status status-" + p.status }, status(p.status)) },
      { label: t("contact"), cell: (p) => [p.contact_name, p.contact_phone].filter(Boolean).join(" · ") },
      { label: t("created_at"), cell: (p) => formatTime(p.created_at) },
    ],
    answer.data.items,
    t("nav_partners")
  );
  return viewFrame("nav_partners", enrol, filterForm, rows, pager(route, answer.data.next_cursor));
}

function partnerFields(partner) {
  const p = partner || {};
  return [
    field({ name: "name", label: t("name"), value: p.name, required: true, attrs: { maxlength: 200 } }),
    field({ name: "category", label: t("category"), type: "select", value: p.category, options: options(PARTNER_CATEGORIES, partnerCategory) }),
    field({ name: "contact_name", label: t("contact_name"), value: p.contact_name, attrs: { maxlength: 100 } }),
    field({ name: "contact_phone", label: t("contact_phone"), value: p.contact_phone, type: "tel", attrs: { maxlength: 40 } }),
    field({ name: "address", label: t("address"), value: p.address, attrs: { maxlength: 300 } }),
    // The public profile: what the directory shows holders (bureau's list of regions when set).
    field({ name: "region", label: t("region"), value: p.region, attrs: { maxlength: 100 } }),
    field({ name: "public_phone", label: t("public_phone"), value: p.public_phone, type: "tel", attrs: { maxlength: 40 } }),
    field({ name: "opening_hours", label: t("opening_hours"), value: p.opening_hours, attrs: { maxlength: 100 } }),
    field({ name: "listed", label: t("listed"), type: "select", value: p.listed === false ? "false" : "true", options: [{ value: "true", label: t("listed_yes") }, { value: "false", label: t("listed_no") }] }),
  ];
}

function readPartner(form) {
  return {
    name: value(form, "name"),
    category: value(form, "category"),
    contact_name: value(form, "contact_name"),
    contact_phone: value(form, "contact_phone"),
    address: value(form, "address"),
    region: value(form, "region"),
    public_phone: value(form, "public_phone"),
    opening_hours: value(form, "opening_hours"),
    listed: value(form, "listed") !== "false",
  };
}

function enrolPage() {
  const form = h("form", { class: "panel", id: "partner-form", novalidate: true }, partnerFields(null), formProblem(),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("partner_enrol"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = readPartner(form);
    if (!body.name) return showProblem(form, { code: "validation_error", errors: [{ field: "name", message: t("required") }] });
    const answer = await api("POST", "/v1/partners", { body: body });
    if (!answer.ok) return showProblem(form, answer.problem);
    go(href("partners", answer.data.id));
  });
  return viewFrame("partner_enrol", h("p", {}, h("a", { href: href("partners"), "data-nav": true }, t("back_to_list"))), form);
}

async function detail(context) {
  const { staff, route } = context;
  const answer = await api("GET", "/v1/partners/" + encodeURIComponent(route.id));
  if (!answer.ok) return viewFrame("nav_partners", h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const partner = answer.data;
  const bureauWrite = can(staff, "partners.write");
  const message = h("p", { class: "form-problem", role: "alert", tabindex: "-1", hidden: true });
  const actions = bureauWrite
    ? nextStatuses("partner", partner.status).map((next) =>
        h("button", { type: "button", class: next === "terminated" ? "danger" : "primary", onclick: async () => {
          if (next === "terminated" && !window.confirm(t("confirm_terminate"))) return;
          const changed = await api("PATCH", "/v1/partners/" + encodeURIComponent(partner.id), { body: { status: next } });
          if (!changed.ok) return say(message, problemText(changed.problem), "problem");
          context.rerender();
        } }, t("partner_" + ACTION[next])))
    : [];
  const facts = h("dl", { class: "facts" },
    h("dt", {}, t("category")), h("dd", {}, partnerCategory(partner.category)),
    h("dt", {}, t("status")), h("dd", {}, h("span", { class: "status status-" + partner.status, id: "partner-status" }, status(partner.status))),
    h("dt", {}, t("contact")), h("dd", {}, [partner.contact_name, partner.contact_phone].filter(Boolean).join(" · ") || "—"),
    h("dt", {}, t("address")), h("dd", {}, partner.address || "—"),
    h("dt", {}, t("id")), h("dd", {}, h("code", {}, partner.id)));
  let edit = null;
  if (bureauWrite && partner.status !== "terminated") {
    const form = h("form", { class: "panel", id: "partner-edit", novalidate: true }, h("h2", {}, t("partner_edit")), partnerFields(partner), formProblem(),
      h("div", { class: "actions" }, h("button", { type: "submit" }, t("save"))));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const saved = await api("PATCH", "/v1/partners/" + encodeURIComponent(partner.id), { body: readPartner(form) });
      if (!saved.ok) return showProblem(form, saved.problem);
      context.rerender();
    });
    edit = h("details", {}, h("summary", {}, t("partner_edit")), form);
  }
  const back = staff.role === "partner_manager" ? null : h("p", {}, h("a", { href: href("partners"), "data-nav": true }, t("back_to_list")));
  const title = h("h1", { id: "view-title", tabindex: "-1" }, partner.name);
  return [back, title, facts, message, actions.length ? h("div", { class: "actions" }, actions) : null, edit, await keys(context, partner)];
}

async function keys(context, partner) {
  const { staff } = context;
  if (!can(staff, "keys.read")) return null;
  const section = h("section", { class: "panel", "aria-labelledby": "keys-heading" }, h("h2", { id: "keys-heading" }, t("keys_title")));
  const answer = await api("GET", `/v1/partners/${encodeURIComponent(partner.id)}/keys`, { query: { limit: 200 } });
  if (!answer.ok) {
    section.append(h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
    return section;
  }
  const writable = can(staff, "keys.write") && partner.status !== "terminated";
  const shown = h("div", { id: "new-key", "aria-live": "polite" });
  const live = answer.data.items.filter((k) => !k.revoked_at);
  const message = h("p", { class: "form-problem", role: "alert", tabindex: "-1", hidden: true });
  section.append(
    table(
      [
        { label: t("key_label"), cell: (k) => k.label || "—" },
        { label: t("key_role"), cell: (k) => t("key_role_" + k.role) },
        { label: t("created_at"), cell: (k) => formatTime(k.created_at) },
        { label: t("last_used_at"), cell: (k) => formatTime(k.last_used_at) || "—" },
        { label: t("actions"), cell: (k) => writable ? h("button", { type: "button", class: "danger", onclick: async () => {
            if (!window.confirm(t("confirm_revoke_key", { label: k.label || k.id }))) return;
            const revoked = await api("DELETE", "/v1/keys/" + encodeURIComponent(k.id));
            if (!revoked.ok) return say(message, problemText(revoked.problem), "problem");
            context.rerender();
          } }, t("key_revoke"), h("span", { class: "visually-hidden" }, " " + (k.label || k.id))) : "" },
      ],
      live,
      t("keys_title")
    ),
    message
  );
  if (writable) {
    const roles = staff.role === "partner_manager" ? ["scanner"] : ["scanner", "partner"];
    const form = h("form", { id: "key-form", class: "inline-form", novalidate: true },
      h("h3", {}, t("key_issue")),
      field({ name: "label", label: t("key_label"), attrs: { maxlength: 100, placeholder: t("key_label_example") } }),
      field({ name: "role", label: t("key_role"), type: "select", options: roles.map((r) => ({ value: r, label: t("key_role_" + r) })) }),
      formProblem(),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("key_issue"))));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const issued = await api("POST", `/v1/partners/${encodeURIComponent(partner.id)}/keys`, { body: { role: value(form, "role"), label: value(form, "label") } });
      if (!issued.ok) return showProblem(form, issued.problem);
      await context.rerender();
      const target = document.getElementById("new-key");
      if (target) target.replaceChildren(shownOnce(issued.data));
    });
    section.append(shown, form);
  }
  return section;
}

/** The new key, shown this once: a copy button and a plain warning. */
function shownOnce(created) {
  return h("div", { class: "once", role: "alert" },
    h("p", { class: "warn" }, t("key_once_warning")),
    h("p", {}, h("label", { for: "new-key-value" }, t("key_new", { label: created.label || created.id })),
      " ", h("input", { id: "new-key-value", readonly: true, value: created.key, class: "secret", spellcheck: "false" }), " ", copyButton(created.key)));
}
