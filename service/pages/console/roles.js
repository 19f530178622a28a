/* What each staff role may do, so the console offers only that: each thing the console
 * offers is the API operation that does it, and the roles it admits come from the
 * service (model.js). The API decides in the end; this keeps the rest out of sight.
 */

import { admits } from "./model.js";

const OPERATIONS = {
  summary: "GET /v1/reports/summary",
  "partners.list": "GET /v1/partners",
  "partners.write": "PATCH /v1/partners/{partner_id}",
  "keys.read": "GET /v1/partners/{partner_id}/keys",
  "keys.write": "POST /v1/partners/{partner_id}/keys",
  "offers.write": "POST /v1/offers",
  holders: "GET /v1/holders",
  "redemptions.reverse": "POST /v1/redemptions/{redemption_id}/reversal",
  audit: "GET /v1/audit-events",
  ledger: "GET /v1/ledger/checkpoint",
  staff: "GET /v1/staff",
  applications: "GET /v1/partner-applications",
  "applications.decide": "POST /v1/partner-applications/{application_id}/approval",
};

export function can(staff, what) {
  return Boolean(staff) && admits(staff.role, OPERATIONS[what]);
}

/** Bureau staff: every partner is theirs to see (the partner list is theirs). */
export function isBureau(staff) {
  return can(staff, "partners.list");
}

/** The views of the navigation, in order, for this account. */
export function views(staff) {
  const all = [
    ["dashboard", true],
    ["partners", isBureau(staff)],
    ["partner", staff && staff.role === "partner_manager"],
    ["applications", can(staff, "applications")],
    ["offers", true],
    ["holders", can(staff, "holders")],
    ["redemptions", true],
    ["reports", true],
    ["audit", can(staff, "audit")],
    ["ledger", can(staff, "ledger")],
    ["staff", can(staff, "staff")],
  ];
  return all.filter(([, allowed]) => allowed).map(([name]) => name);
}
