/* Redemptions: filter by date, offer, partner (bureau) and status; reverse one with a
 * reason (partner_manager for its own, bureau_admin for any).
 */

import { api, listAll } from "./api.js";
import { clearErrors, field, formProblem, formatTime, h, showProblem, table, value, viewFrame } from "./dom.js";
import { problemText, t } from "./i18n.js";
import { options, status } from "./labels.js";
import { filters, listQuery, pager } from "./lists.js";
import { formatFen } from "./money.js";
import { can, isBureau } from "./roles.js";

export async function render(context) {
  const { staff, route } = context;
  const [offers, partners] = await Promise.all([
    listAll("/v1/offers", {}),
    isBureau(staff) ? listAll("/v1/partners", {}) : Promise.resolve({ ok: true, data: { items: [] } }),
  ]);
  const offerById = offers.ok ? Object.fromEntries(offers.data.items.map((o) => [o.id, o])) : {};
  const partnerById = partners.ok ? Object.fromEntries(partners.data.items.map((p) => [p.id, p])) : {};
  const fields = [
    field({ name: "from", label: t("from_date"), type: "date" }),
    field({ name: "to", label: t("to_date"), type: "date" }),
    field({ name: "offer_id", label: t("offer"), type: "select", options: [{ value: "", label: t("any") }, ...Object.values(offerById).map((o) => ({ value: o.id, label: o.title }))] }),
    field({ name: "status", label: t("status"), type: "select", options: options(["completed", "reversed"], status, "any") }),
  ];
  if (isBureau(staff)) fields.splice(2, 0, field({ name: "partner_id", label: t("partner"), type: "select", options: [{ value: "", label: t("any") }, ...Object.values(partnerById).map((p) => ({ value: p.id, label: p.name }))] }));
  const filterForm = filters(route, fields);
  const answer = await api("GET", "/v1/redemptions", { query: listQuery(route, ["from", "to", "offer_id", "partner_id", "status"]) });
  if (!answer.ok) return viewFrame("nav_redemptions", filterForm, h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const mayReverse = can(staff, "redemptions.reverse");
  const columns = [
    { label: t("time"), cell: (r) => formatTime(r.created_at) },
    isBureau(staff) ? { label: t("partner"), cell: (r) => (partnerById[r.partner_id] || {}).name || r.partner_id } : null,
    { label: t("offer"), cell: (r) => (offerById[r.offer_id] || {}).title || r.offer_id },
    { label: t("reference"), cell: (r) => r.reference || "—" },
    { label: t("purchase_amount"), cell: (r) => formatFen(r.purchase_amount), num: true },
    { label: t("discount_amount"), cell: (r) => formatFen(r.discount_amount), num: true },
    { label: t("status"), cell: (r) => h("span", { class: "status status-" + r.status }, status(r.status)) },
    mayReverse ? { label: t("actions"), cell: (r) => (r.status === "completed" ? reverseControl(r, context) : formatTime(r.reversed_at)) } : null,
  ].filter(Boolean);
  return viewFrame("nav_redemptions", filterForm, table(columns, answer.data.items, t("nav_redemptions")), pager(route, answer.data.next_cursor));
}

/** "Reverse" opens a small form asking for the reason, then sends the reversal. */
function reverseControl(redemption, context) {
  const holder = h("div", { class: "reverse" });
  const open = h("button", { type: "button", class: "danger" }, t("reverse"), h("span", { class: "visually-hidden" }, " " + (redemption.reference || redemption.id)));
  open.addEventListener("click", () => {
    const form = h("form", { class: "inline-form", novalidate: true, dataset: { redemption: redemption.id } },
      field({ name: "reason", label: t("reverse_reason"), unique: true, attrs: { maxlength: 500, required: true } }),
      formProblem(),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "danger" }, t("reverse_confirm")),
        h("button", { type: "button", onclick: () => holder.replaceChildren(open) }, t("cancel"))));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const reason = value(form, "reason");
      if (!reason) return showProblem(form, { code: "validation_error", errors: [{ field: "reason", message: t("reverse_reason_required") }] });
      const answer = await api("POST", `/v1/redemptions/${encodeURIComponent(redemption.id)}/reversal`, { body: { reason: reason } });
      if (!answer.ok) return showProblem(form, answer.problem);
      context.rerender();
    });
    holder.replaceChildren(form);
    form.querySelector("input").focus();
  });
  holder.append(open);
  return holder;
}
