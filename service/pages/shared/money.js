/* Money typed in yuan becomes integer fen by string arithmetic, never a float;
 * percentages typed as "15" or "12.5" become basis points the same way.
 */

export const MAX_FEN = 10000000000; // schemas.common.MAX_MONEY

function normalise(text) {
  return String(text)
    .replace(/[\uFF10-\uFF19]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
    .replace(/[\uFF0E\u3002]/g, ".")
    .replace(/^\s*[¥\uFFE5]?\s*/, "")
    .replace(/,/g, "")
    .trim();
}

/** Digits with at most `places` decimals → the integer of units (1/10^places), or an error key. */
function scaled(text, places, maxWholeDigits) {
  const typed = normalise(text);
  const match = /^(\d*)(?:\.(\d*))?$/.exec(typed);
  if (!match || (match[1] === "" && !match[2])) return { error: "invalid_number" };
  const decimals = match[2] || "";
  if (decimals.length > places) return { error: places === 2 ? "too_precise_fen" : "too_precise_percent" };
  const whole = match[1].replace(/^0+(?=\d)/, "");
  if (whole.length > maxWholeDigits) return { error: "too_large" };
  const digits = (whole + (decimals + "00").slice(0, places)).replace(/^0+(?=\d)/, "");
  return { value: parseInt(digits || "0", 10) };
}

/**
 * Yuan as typed ("12.80", "12.8", "12", "¥1,280", "１２．８０") to fen.
 * Returns {fen} or {error: <ui text key>}; "" is {fen: null} (an optional field left empty).
 */
export function parseYuan(text, options) {
  const opts = options || {};
  if (normalise(text) === "") return opts.required ? { error: "required" } : { fen: null };
  const result = scaled(text, 2, 9);
  if (result.error) return result;
  if (result.value < (opts.minimum === undefined ? 0 : opts.minimum)) return { error: "too_small" };
  if (result.value > MAX_FEN) return { error: "too_large" };
  return { fen: result.value };
}

/** A percentage as typed ("15", "12.5", "0.01") to basis points (1500, 1250, 1). */
export function parsePercent(text) {
  if (normalise(text) === "") return { error: "required" };
  const result = scaled(text, 2, 3);
  if (result.error) return result;
  if (result.value < 1 || result.value > 10000) return { error: "percent_range" };
  return { bp: result.value };
}

/** Integer fen as "¥12.80" (integers only). */
export function formatFen(fen) {
  if (fen === null || fen === undefined) return "";
  const sign = fen < 0 ? "-" : "";
  const whole = Math.abs(fen);
  const yuan = String(Math.floor(whole / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return sign + "¥" + yuan + "." + String(whole % 100).padStart(2, "0");
}

/** Fen as the yuan text a form field shows ("12.80"), for editing. */
export function fenToYuanText(fen) {
  if (fen === null || fen === undefined) return "";
  return Math.floor(fen / 100) + "." + String(fen % 100).padStart(2, "0");
}

/** Basis points as "15" or "12.5" (for a form) . */
export function bpToPercentText(bp) {
  if (bp === null || bp === undefined) return "";
  const cents = bp % 100;
  return String(Math.floor(bp / 100)) + (cents ? "." + String(cents).padStart(2, "0").replace(/0$/, "") : "");
}
