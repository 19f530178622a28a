/* What the service decides and the console follows (GET /console/model.json, revalidated
 * on every load): each entity's status moves, the staff roles each operation admits, and
 * the API's enumerations. There is no copy of them here, so the console never offers
 * what the API refuses. The enumerations are live bindings, filled before the first view.
 */

let model = { lifecycles: {}, operations: {}, enums: {} };

export let PARTNER_CATEGORIES = [];
export let HOLDER_CATEGORIES = [];
export let OFFER_KINDS = [];
export let PERIODS = [];
export let STAFF_ROLES = [];
export let APPLICATION_STATUSES = [];

export async function loadModel() {
  const response = await fetch("/console/model.json", { credentials: "same-origin" });
  if (!response.ok) throw new Error("GET /console/model.json answered " + response.status);
  model = await response.json();
  PARTNER_CATEGORIES = model.enums.partner_category;
  HOLDER_CATEGORIES = model.enums.holder_category;
  OFFER_KINDS = model.enums.offer_kind;
  PERIODS = model.enums.period;
  STAFF_ROLES = model.enums.staff_role;
  APPLICATION_STATUSES = model.enums.application_status;
}

/** Every status of an entity ("partner", "offer", "holder"), in its life cycle's order. */
export function statuses(entity) {
  return Object.keys(model.lifecycles[entity] || {});
}

/** The statuses an entity may move to from `status`. */
export function nextStatuses(entity, status) {
  return (model.lifecycles[entity] || {})[status] || [];
}

/** Whether a staff role may call an operation ("PATCH /v1/partners/{partner_id}"). */
export function admits(role, operation) {
  return (model.operations[operation] || []).includes(role);
}

/** The field an offer of this kind must have (its first: percent_bp, amount_off, …). */
export function mainKindField(kind) {
  return (model.enums.offer_kind_fields || {})[kind][0];
}
