/* The names of the API's enumerations in the current language. */

import { t } from "./i18n.js";

export const PARTNER_CATEGORIES = ["postal", "culture_tourism", "catering", "retail", "health", "transport", "other"];
export const HOLDER_CATEGORIES = ["veteran", "disabled_veteran", "martyr_family", "military_family", "other"];
export const OFFER_KINDS = ["percent_off", "amount_off", "fixed_price", "service"];
export const PERIODS = ["day", "week", "month", "year", "ever"];
export const STAFF_ROLES = ["bureau_admin", "bureau_auditor", "partner_manager"];

export const partnerCategory = (c) => t("pcat_" + c);
export const holderCategory = (c) => t("hcat_" + c);
export const status = (s) => t("status_" + s);
export const kind = (k) => t("kind_" + k);

export function options(values, label, emptyKey) {
  const list = values.map((v) => ({ value: v, label: label(v) }));
  return emptyKey ? [{ value: "", label: t(emptyKey) }, ...list] : list;
}
