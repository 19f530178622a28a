/* What an offer grants on a purchase, for the till while it is offline: the same rules,
 * in the same order, as service/domain/pricing.py (integer fen, one rounding rule, half
 * up). Online the service prices every purchase; this runs only when it cannot be asked.
 * tests/browser/test_offline_till.py runs the vectors written by the service's own
 * pricing through it: they agree fen for fen. The console's offer form prices its sample
 * purchase with it too: one pricing in JS.
 */

const BASIS_POINTS = 10000;

/** numerator / denominator to the nearest fen, halves up (pricing.round_half_up_fen).
 * BigInt, so no product is ever a float. */
export function roundHalfUpFen(numerator, denominator) {
  const n = BigInt(numerator);
  const d = BigInt(denominator);
  return Number((2n * n + d) / (2n * d));
}

function moneyDiscount(rule, purchase) {
  if (rule.kind === "percent_off") {
    const discount = roundHalfUpFen(BigInt(purchase) * BigInt(rule.percent_bp), BASIS_POINTS);
    return rule.max_discount == null ? discount : Math.min(discount, rule.max_discount);
  }
  if (rule.kind === "amount_off") return Math.min(rule.amount_off, purchase);
  return Math.max(purchase - rule.fixed_price, 0); // fixed_price: the holder pays at most this
}

/** {purchase_amount, discount_amount, payable_amount} for `purchase` fen under `rule`
 * (an offer of the till pack), or {problem} as the service would answer it. */
export function quote(rule, purchase) {
  if (!Number.isSafeInteger(purchase) || purchase < 0 || (purchase === 0 && rule.kind !== "service")) {
    return { problem: { code: "validation_error", errors: [{ field: "purchase_amount" }] } };
  }
  if (rule.min_purchase != null && purchase < rule.min_purchase) {
    return { problem: { code: "below_min_purchase", min_purchase: rule.min_purchase } };
  }
  if (rule.kind === "service") {
    return { purchase_amount: purchase, discount_amount: rule.nominal_value, payable_amount: purchase };
  }
  const discount = moneyDiscount(rule, purchase);
  return { purchase_amount: purchase, discount_amount: discount, payable_amount: purchase - discount };
}
