/* Redemptions: filter by date, offer, till, partner (bureau), status, and offline or
 * conflicts only; reverse one with a reason (partner_manager for its own, bureau_admin
 * for any). A redemption a till made offline shows when it was made, and its conflict
 * (the rule that would have refused it online, docs/rules.md) in the server's words.
 *
 * The tills are the partner's scanner keys (GET /v1/partners/{id}/keys), revoked ones
 * too: what they redeemed stays in the ledger. A partner_manager has one partner; the
 * bureau picks one first, since a till means something only within its partner.
 */

import { api, listAll } from "./api.js";
import { clearErrors, field, formProblem, formatTime, h, showProblem, table, value, viewFrame } from "./dom.js";
import { problemText, t } from "./i18n.js";
import { options, status } from "./labels.js";
import { filters, listQuery, pager } from "./lists.js";
import { formatFen } from "./money.js";
import { can, isBureau } from "./roles.js";

const NONE = Promise.resolve({ ok: true, data: { items: [] } });

export async function render(context) {
  const { staff, route } = context;
  const tillsOf = isBureau(staff) ? route.params.get("partner_id") : staff.partner_id;
  const [offers, partners, keys] = await Promise.all([
    listAll("/v1/offers", {}),
    isBureau(staff) ? listAll("/v1/partners", {}) : NONE,
    tillsOf ? listAll(`/v1/partners/${encodeURIComponent(tillsOf)}/keys`, {}) : NONE,
  ]);
  const offerById = offers.ok ? Object.fromEntries(offers.data.items.map((o) => [o.id, o])) : {};
  const partnerById = partners.ok ? Object.fromEntries(partners.data.items.map((p) => [p.id, p])) : {};
  const tills = keys.ok ? keys.data.items.filter((k) => k.role === "scanner") : [];
  const tillById = Object.fromEntries(tills.map((k) => [k.id, k]));
  const fields = [
    field({ name: "from", label: t("from_date"), type: "date" }),
    field({ name: "to", label: t("to_date"), type: "date" }),
    field({ name: "offer_id", label: t("offer"), type: "select", options: [{ value: "", label: t("any") }, ...Object.values(offerById).map((o) => ({ value: o.id, label: o.title }))] }),
    tillField(tillsOf ? [{ value: "", label: t("any") }, ...tills.map((k) => ({ value: k.id, label: tillName(k) }))] : null),
    field({ name: "status", label: t("status"), type: "select", options: options(["completed", "reversed"], status, "any") }),
    field({ name: "offline", label: t("offline_filter"), type: "select", options: [{ value: "", label: t("any") }, { value: "true", label: t("offline_only") }, { value: "false", label: t("online_only") }] }),
    field({ name: "conflict", label: t("conflict_filter"), type: "select", options: [{ value: "", label: t("any") }, { value: "true", label: t("conflicts_only") }] }),
  ];
  if (isBureau(staff)) fields.splice(2, 0, field({ name: "partner_id", label: t("partner"), type: "select", options: [{ value: "", label: t("any") }, ...Object.values(partnerById).map((p) => ({ value: p.id, label: p.name }))] }));
  const filterForm = filters(route, fields);
  if (isBureau(staff)) {
    // Another partner's tills are not this one's: the choice fills with the tills of the
    // partner chosen (before the filters are applied), or waits for one.
    const partnerSelect = filterForm.elements.namedItem("partner_id");
    let asked = 0;
    partnerSelect.addEventListener("change", async () => {
      const chosen = partnerSelect.value;
      const ticket = (asked += 1);
      filterForm.querySelector('[data-field="key_id"]').replaceWith(tillField(null));
      if (!chosen) return;
      const answer = await listAll(`/v1/partners/${encodeURIComponent(chosen)}/keys`, {});
      if (ticket !== asked || !answer.ok) return; // another partner was chosen meanwhile
      const choices = answer.data.items.filter((k) => k.role === "scanner");
      filterForm.querySelector('[data-field="key_id"]').replaceWith(
        tillField([{ value: "", label: t("any") }, ...choices.map((k) => ({ value: k.id, label: tillName(k) }))]));
    });
  }
  const answer = await api("GET", "/v1/redemptions", { query: listQuery(route, ["from", "to", "offer_id", "partner_id", "key_id", "status", "offline", "conflict"]) });
  if (!answer.ok) return viewFrame("nav_redemptions", filterForm, h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const mayReverse = can(staff, "redemptions.reverse");
  const columns = [
    { label: t("time"), cell: (r) => formatTime(r.created_at) },
    // One partner's rows (a manager's, or the bureau's filtered) name their till instead.
    isBureau(staff) && !tillsOf ? { label: t("partner"), cell: (r) => (partnerById[r.partner_id] || {}).name || r.partner_id } : null,
    { label: t("offer"), cell: (r) => (offerById[r.offer_id] || {}).title || r.offer_id },
    tillsOf ? { label: t("till"), cell: (r) => (tillById[r.key_id] ? tillName(tillById[r.key_id]) : r.key_id) } : null,
    { label: t("reference"), cell: (r) => r.reference || "—" },
    { label: t("purchase_amount"), cell: (r) => formatFen(r.purchase_amount), num: true },
    { label: t("discount_amount"), cell: (r) => formatFen(r.discount_amount), num: true },
    { label: t("status"), cell: (r) => h("span", { class: "status status-" + r.status }, status(r.status)) },
    { label: t("reversal"), cell: (r) => (r.reversal ? reversalText(r.reversal) : "—") },
    { label: t("offline_column"), cell: offlineCell },
    mayReverse ? { label: t("actions"), cell: (r) => (r.status === "completed" ? reverseControl(r, context) : "") } : null,
  ].filter(Boolean);
  return viewFrame("nav_redemptions", filterForm, table(columns, answer.data.items, t("nav_redemptions")), pager(route, answer.data.next_cursor));
}

/** Made offline: when, and the conflict it was recorded with, as a badge. */
function offlineCell(redemption) {
  if (!redemption.offline_at) return "—";
  const made = h("span", {}, t("offline_made", { time: formatTime(redemption.offline_at) }));
  if (!redemption.conflict) return made;
  const badge = h("span", { class: "status status-conflict", title: redemption.conflict },
    t("conflict_badge", { rule: problemText({ code: redemption.conflict }) }));
  return h("span", {}, made, " ", badge);
}

/** When, by whom and why a redemption was reversed, as the audit log names the actor. */
function reversalText(reversal) {
  const actor = reversal.actor || {};
  return t("reversal_by", { time: formatTime(reversal.created_at), actor: actor.display_name || actor.label || actor.id || "—", reason: reversal.reason || "—" });
}

/** The till filter: its options, or (null) a disabled choice asking for a partner first. */
function tillField(choices) {
  if (choices) return field({ name: "key_id", label: t("till"), type: "select", options: choices });
  const box = field({ name: "key_id", label: t("till"), type: "select", options: [{ value: "", label: t("till_partner_first") }] });
  box.querySelector("select").disabled = true;
  return box;
}

function tillName(key) {
  const label = key.label || key.id;
  return key.revoked_at ? t("till_revoked", { label: label }) : label;
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
