/* What each staff role may do (docs/staff.md), so the console offers only that. The API
 * decides in the end; this only keeps what a role may not do out of sight.
 */

const BUREAU = ["bureau_admin", "bureau_auditor"];

const RULES = {
  summary: BUREAU,
  "partners.list": BUREAU,
  "partners.write": ["bureau_admin"],
  "keys.read": ["bureau_admin", "bureau_auditor", "partner_manager"],
  "keys.write": ["bureau_admin", "partner_manager"],
  "offers.write": ["bureau_admin", "partner_manager"],
  holders: ["bureau_admin"],
  "redemptions.reverse": ["bureau_admin", "partner_manager"],
  audit: BUREAU,
  ledger: BUREAU,
  staff: ["bureau_admin"],
  applications: BUREAU,
  "applications.decide": ["bureau_admin"],
};

export function can(staff, what) {
  return Boolean(staff) && (RULES[what] || []).includes(staff.role);
}

export function isBureau(staff) {
  return Boolean(staff) && BUREAU.includes(staff.role);
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
