/* The audit log (bureau): who changed what, filterable by entity, entity id, actor and
 * date; each filter lives in the URL.
 */

import { api } from "./api.js";
import { field, formatTime, h, table, viewFrame } from "./dom.js";
import { problemText, t } from "./i18n.js";
import { filters, listQuery, pager } from "./lists.js";
import { formatFen } from "./money.js";

const ENTITIES = ["partner", "api_key", "offer", "holder", "voucher", "redemption", "staff"];

/** The actor of an event, as docs/staff.md names it ({type, id, display_name | label}) or as ids. */
function actor(event) {
  const who = event.actor;
  if (who && typeof who === "object") {
    const name = who.display_name || who.label || "";
    return h("span", { class: "actor" }, t("actor_" + (who.type === "staff" ? "staff" : "key")), ": ", name ? name + " " : "", h("code", {}, who.id));
  }
  return h("span", { class: "actor" }, (event.actor_role || "") + " ", h("code", {}, event.actor_id || "—"));
}

/** Fields of the API's bodies that hold money (integer fen, with "currency" beside them). */
const MONEY_FIELDS = new Set([
  "amount_off", "fixed_price", "nominal_value", "min_purchase", "max_discount", "budget", "spent",
  "purchase_amount", "discount_amount", "payable_amount", "discount_total", "amount",
  "amount_given_back",
]);

/** One value of a change as people read it: money in yuan, instants in the programme's zone. */
function shown(name, value) {
  if (value === null || value === undefined || value === "") return "—";
  if (MONEY_FIELDS.has(name) && Number.isInteger(value)) return formatFen(value);
  if (typeof value === "string" && /_at$/.test(name) && !Number.isNaN(Date.parse(value))) return formatTime(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** field → [before, after] as "field: before → after" (a value alone as it is). */
function changes(event) {
  const entries = Object.entries(event.changes || {});
  if (!entries.length) return "—";
  return h("ul", { class: "changes" }, entries.map(([name, change]) => {
    // A holder's personal field, withheld from this reader by the server, says so in words.
    const text = change === "withheld" ? t("audit_withheld")
      : Array.isArray(change) && change.length === 2
        ? shown(name, change[0]) + " → " + shown(name, change[1])
        : shown(name, change);
    return h("li", {}, name + ": " + text);
  }));
}

export async function render(context) {
  const { route } = context;
  const filterForm = filters(route, [
    field({ name: "entity", label: t("audit_entity"), type: "select", options: [{ value: "", label: t("any") }, ...ENTITIES.map((e) => ({ value: e, label: t("entity_" + e) }))] }),
    field({ name: "entity_id", label: t("audit_entity_id") }),
    field({ name: "actor", label: t("audit_actor") }),
    field({ name: "from", label: t("from_date"), type: "date" }),
    field({ name: "to", label: t("to_date"), type: "date" }),
  ]);
  const answer = await api("GET", "/v1/audit-events", { query: listQuery(route, ["entity", "entity_id", "actor", "from", "to"]) });
  if (!answer.ok) return viewFrame("nav_audit", filterForm, h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  return viewFrame("nav_audit", filterForm,
    table([
      { label: t("time"), cell: (e) => formatTime(e.occurred_at) },
      { label: t("audit_actor"), cell: actor },
      { label: t("audit_action"), cell: (e) => e.action },
      { label: t("audit_entity"), cell: (e) => [e.entity_type, " ", h("code", {}, e.entity_id)] },
      { label: t("audit_changes"), cell: changes },
    ], answer.data.items, t("nav_audit")),
    pager(route, answer.data.next_cursor));
}
