/* Partner applications (bureau): the firms that asked to join through /join, newest
 * first, those waiting by default; one of them in full, and the bureau's one decision:
 * approve (the partner is enrolled from the application and its manager invited: the
 * setup link is shown once) or reject with a reason the applicant reads on its status page.
 */

import { api } from "./api.js";
import { clearErrors, copyButton, field, formProblem, formatTime, h, say, showProblem, table, value, viewFrame } from "./dom.js";
import { problemText, t } from "./i18n.js";
import { APPLICATION_STATUSES, options, partnerCategory, status } from "./labels.js";
import { filters, listQuery, pager } from "./lists.js";
import { can } from "./roles.js";
import { href } from "./router.js";

export async function render(context) {
  return context.route.id ? detail(context) : list(context);
}

async function list(context) {
  const { route } = context;
  const query = listQuery(route, ["status"]);
  // Those waiting for a decision, unless another status (or any) is asked for.
  const shown = query.status || "submitted";
  if (shown === "any") delete query.status;
  else query.status = shown;
  const answer = await api("GET", "/v1/partner-applications", { query: query });
  const filterForm = filters(route, [
    field({ name: "status", label: t("status"), type: "select", value: shown, options: [{ value: "any", label: t("any") }, ...options(APPLICATION_STATUSES, status)] }),
  ]);
  if (!answer.ok) return viewFrame("nav_applications", filterForm, h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const rows = table(
    [
      { label: t("submitted_at"), cell: (a) => formatTime(a.created_at) },
      { label: t("name"), cell: (a) => h("a", { href: href("applications", a.id), "data-nav": true }, a.name) },
      { label: t("category"), cell: (a) => partnerCategory(a.category) },
      { label: t("region"), cell: (a) => a.region },
      { label: t("contact"), cell: (a) => [a.contact_name, a.contact_phone].join(" · ") },
      { label: t("status"), cell: (a) => h("span", { class: "status status-" + a.status }, status(a.status)) },
    ],
    answer.data.items,
    t("nav_applications")
  );
  return viewFrame("nav_applications", filterForm, rows, pager(route, answer.data.next_cursor));
}

function facts(application) {
  const a = application;
  const rows = [
    ["status", h("span", { class: "status status-" + a.status, id: "application-status" }, status(a.status))],
    ["submitted_at", formatTime(a.created_at)],
    ["category", partnerCategory(a.category)],
    ["contact", [a.contact_name, a.contact_phone, a.contact_email].join(" · ")],
    ["address", a.address],
    ["region", a.region],
    ["public_phone", a.public_phone || "—"],
    ["opening_hours", a.opening_hours || "—"],
    ["offer_idea", a.offer_idea],
  ];
  if (a.decided_at) rows.push(["decided_at", formatTime(a.decided_at)]);
  if (a.rejection_reason) rows.push(["rejection_reason", a.rejection_reason]);
  if (a.partner_id) rows.push(["partner", h("a", { href: href("partners", a.partner_id), "data-nav": true }, a.name)]);
  return h("dl", { class: "facts" }, rows.map(([key, shown]) => [h("dt", {}, t(key)), h("dd", {}, shown)]));
}

async function detail(context) {
  const { staff, route } = context;
  const back = h("p", {}, h("a", { href: href("applications"), "data-nav": true }, t("back_to_list")));
  const answer = await api("GET", "/v1/partner-applications/" + encodeURIComponent(route.id));
  if (!answer.ok) return viewFrame("nav_applications", back, h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const application = answer.data;
  const title = h("h2", {}, application.name);
  const decide = application.status === "submitted" && can(staff, "applications.decide");
  return viewFrame("nav_applications", back, title, facts(application), decide ? decision(context, application) : null);
}

/** Approve, or reject with a reason: one decision, and the API refuses a second. */
function decision(context, application) {
  const path = "/v1/partner-applications/" + encodeURIComponent(application.id);
  const outcome = h("div", { id: "decision-outcome" });
  const message = h("p", { class: "form-problem", role: "alert", tabindex: "-1", hidden: true });
  const approve = h("button", { type: "button", class: "primary", onclick: async () => {
    if (!window.confirm(t("confirm_approve", { name: application.name }))) return;
    const approved = await api("POST", path + "/approval");
    if (!approved.ok) return say(message, problemText(approved.problem), "problem");
    await context.rerender();
    const link = new URL(approved.data.manager.setup_url, location.origin).href;
    const target = document.getElementById("decision-outcome") || outcome;
    target.replaceChildren(h("div", { class: "once", role: "alert" },
      h("p", {}, t("application_approved", { name: approved.data.partner.name })),
      h("p", { class: "warn" }, t("invite_once_warning", { email: approved.data.manager.email })),
      h("p", {}, h("label", { for: "invite-url" }, t("invite_link")), " ", h("input", { id: "invite-url", readonly: true, value: link, class: "secret" }), " ", copyButton(link))));
    document.getElementById("view").append(target);
  } }, t("application_approve"));
  const reject = h("form", { class: "panel", id: "application-rejection", novalidate: true },
    h("h3", {}, t("application_reject")),
    field({ name: "reason", label: t("rejection_reason"), type: "textarea", required: true, hint: t("rejection_reason_hint") }),
    formProblem(),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, t("application_reject"))));
  reject.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(reject);
    const reason = value(reject, "reason");
    if (!reason) return showProblem(reject, { code: "validation_error", errors: [{ field: "reason", message: t("required") }] });
    const rejected = await api("POST", path + "/rejection", { body: { reason: reason } });
    if (!rejected.ok) return showProblem(reject, rejected.problem);
    context.rerender();
  });
  return h("section", { class: "panel", "aria-labelledby": "decide-title" },
    h("h2", { id: "decide-title" }, t("application_decide")),
    h("p", { class: "explain" }, t("application_decide_explain")),
    message, h("div", { class: "actions" }, approve), reject, outcome);
}
