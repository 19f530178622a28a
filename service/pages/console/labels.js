/* The names of the API's enumerations in the current language. */

import { t } from "./i18n.js";

// The enumerations themselves are the service's (model.js); here only their names.
export { APPLICATION_STATUSES, HOLDER_CATEGORIES, OFFER_KINDS, PARTNER_CATEGORIES, PERIODS, STAFF_ROLES } from "./model.js";

export const partnerCategory = (c) => t("pcat_" + c);
export const holderCategory = (c) => t("hcat_" + c);
export const status = (s) => t("status_" + s);
export const kind = (k) => t("kind_" + k);

export function options(values, label, emptyKey) {
  const list = values.map((v) => ({ value: v, label: label(v) }));
  return emptyKey ? [{ value: "", label: t(emptyKey) }, ...list] : list;
}
