/* What /scan and /wallet share beyond the modules they have in common with the console
 * (i18n.js, api.js, money.js): a purchase typed in yuan, dates in the programme's time
 * zone, the page's start.
 */

import { language, languageToggle, loadMessages, setLanguage } from "./i18n.js";
import { MAX_FEN } from "./money.js";

/**
 * Yuan as typed ("12.80", "12.8", "12", "１２．８０") to integer fen, without floats.
 * Returns {fen} or {error: <ui text key>}.
 */
export function parseYuan(text) {
  const typed = String(text)
    .replace(/[\uFF10-\uFF19]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
    .replace(/[\uFF0E\u3002]/g, ".")
    .replace(/^\s*[¥\uFFE5]?\s*/, "")
    .trim();
  if (typed === "") return { error: "amount_required" };
  const match = /^(\d*)(?:\.(\d*))?$/.exec(typed);
  if (!match || (match[1] === "" && !match[2])) return { error: "amount_invalid" };
  const cents = match[2] || "";
  if (cents.length > 2) return { error: "amount_too_precise" };
  const yuan = match[1].replace(/^0+(?=\d)/, "");
  if (yuan.length > 9) return { error: "amount_too_large" };
  const fen = Number(yuan || "0") * 100 + Number((cents + "00").slice(0, 2));
  if (fen < 1) return { error: "amount_invalid" };
  if (fen > MAX_FEN) return { error: "amount_too_large" };
  return { fen: fen };
}

/** The programme's time zone (the page's meta tag): dates read the same on every phone. */
function timeZone() {
  const meta = document.querySelector('meta[name="youdai-timezone"]');
  return (meta && meta.content) || "Asia/Shanghai";
}

function parts(date, options) {
  const found = {};
  const format = new Intl.DateTimeFormat("en-CA", Object.assign({ timeZone: timeZone(), hourCycle: "h23" }, options));
  for (const part of format.formatToParts(date)) found[part.type] = part.value;
  return found;
}

/** A calendar date in the programme time zone, YYYY-MM-DD. */
export function formatDate(iso) {
  if (!iso) return "";
  const p = parts(new Date(iso), { year: "numeric", month: "2-digit", day: "2-digit" });
  return p.year + "-" + p.month + "-" + p.day;
}

/** The last day something that ends at `iso` is valid: an end at 00:00 on 2 January is
 * valid through 1 January (programme time zone, whatever the phone's). */
export function formatLastDay(iso) {
  if (!iso) return "";
  return formatDate(new Date(Date.parse(iso) - 1).toISOString());
}

/** A time of day in the programme time zone, HH:MM (HH:MM:SS `withSeconds`). */
export function formatTime(iso, withSeconds) {
  if (!iso) return "";
  const p = parts(new Date(iso), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return p.hour + ":" + p.minute + (withSeconds ? ":" + p.second : "");
}

/** The bureau's help number (YOUDAI_HELP_PHONE), or "". */
export function helpPhone() {
  const meta = document.querySelector('meta[name="youdai-help-phone"]');
  return (meta && meta.content) || "";
}

/** A random UUID; crypto.randomUUID needs HTTPS, a till on plain HTTP still gets one. */
export function newId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function" && window.isSecureContext) {
    return window.crypto.randomUUID();
  }
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
}

/** Show a text in an element that is hidden while empty; `kind` styles it. */
export function say(element, text, kind) {
  element.textContent = text || "";
  element.hidden = !text;
  element.dataset.kind = kind || "";
}

/** Load the texts, apply them, wire the language toggle; resolves when the page may start. */
export async function start() {
  await loadMessages("youdai.lang");
  for (const button of document.querySelectorAll("[data-lang-toggle]")) languageToggle(button);
  setLanguage(language(), false);
  const loading = document.getElementById("loading");
  if (loading) loading.hidden = true;
  document.getElementById("main").hidden = false;
}
