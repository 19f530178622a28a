/* What both pages share: texts in two languages, money in fen, calls to the API.
 *
 * Every text the pages show comes from messages.json (one file, Chinese and English
 * side by side), so translators and the tests read a single place.
 */
"use strict";

window.Youdai = (function () {
  const LANG_KEY = "youdai.lang";
  const MAX_FEN = 10000000000; // schemas.common.MAX_MONEY
  let messages = { ui: {}, problems: {} };
  let lang = "zh";
  const languageListeners = [];

  function initialLanguage() {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === "zh" || saved === "en") return saved;
    // The service chose from Accept-Language when it served the page.
    return document.documentElement.lang.toLowerCase().startsWith("en") ? "en" : "zh";
  }

  /** A UI text in the current language, with {name} placeholders filled from `vars`. */
  function t(key, vars) {
    const entry = messages.ui[key];
    let text = entry ? entry[lang] : key;
    if (vars) {
      for (const [name, value] of Object.entries(vars)) {
        text = text.split("{" + name + "}").join(String(value));
      }
    }
    return text;
  }

  /** The plain-words reason for a problem answer (application/problem+json). */
  function problemText(problem) {
    const code = (problem && problem.code) || "internal_error";
    const entry = messages.problems[code];
    if (entry) return entry[lang];
    return t("unknown_problem", { code: code });
  }

  function applyTexts(root) {
    const scope = root || document;
    for (const element of scope.querySelectorAll("[data-i18n]")) {
      element.textContent = t(element.dataset.i18n);
    }
    for (const element of scope.querySelectorAll("[data-i18n-placeholder]")) {
      element.placeholder = t(element.dataset.i18nPlaceholder);
    }
    for (const element of scope.querySelectorAll("[data-i18n-label]")) {
      element.setAttribute("aria-label", t(element.dataset.i18nLabel));
    }
    for (const element of scope.querySelectorAll("[data-i18n-alt]")) {
      element.alt = t(element.dataset.i18nAlt);
    }
    for (const button of document.querySelectorAll("[data-lang-toggle]")) {
      button.textContent = t("other_language");
      // Its accessible name is its visible text ("English" / "中文"), in that language.
      button.setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
      button.title = t("switch_language");
    }
  }

  function setLanguage(next) {
    lang = next;
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    applyTexts();
    for (const listener of languageListeners) listener(lang);
  }

  /** Load the texts, apply them, wire the language toggle; resolves when the page may start. */
  async function start() {
    const link = document.querySelector('link[rel="preload"][as="fetch"]');
    const response = await fetch(link.getAttribute("href"));
    messages = await response.json();
    for (const button of document.querySelectorAll("[data-lang-toggle]")) {
      button.addEventListener("click", function () {
        const next = lang === "zh" ? "en" : "zh";
        localStorage.setItem(LANG_KEY, next);
        setLanguage(next);
      });
    }
    setLanguage(initialLanguage());
    const loading = document.getElementById("loading");
    if (loading) loading.hidden = true;
    document.getElementById("main").hidden = false;
  }

  function onLanguageChange(listener) {
    languageListeners.push(listener);
  }

  function language() {
    return lang;
  }

  /**
   * Yuan as typed ("12.80", "12.8", "12", "１２．８０") to integer fen, without floats.
   * Returns {fen} or {error: <ui text key>}.
   */
  function parseYuan(text) {
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

  /** Integer fen as "¥12.80" (integers only: no float rounding). */
  function formatFen(fen) {
    const sign = fen < 0 ? "-" : "";
    const whole = Math.abs(fen);
    const cents = String(whole % 100).padStart(2, "0");
    return sign + "¥" + Math.floor(whole / 100) + "." + cents;
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
  function formatDate(iso) {
    if (!iso) return "";
    const p = parts(new Date(iso), { year: "numeric", month: "2-digit", day: "2-digit" });
    return p.year + "-" + p.month + "-" + p.day;
  }

  /** The last day something that ends at `iso` is valid: an end at 00:00 on 2 January is
   * valid through 1 January (programme time zone, whatever the phone's). */
  function formatLastDay(iso) {
    if (!iso) return "";
    return formatDate(new Date(Date.parse(iso) - 1).toISOString());
  }

  /** A time of day in the programme time zone, HH:MM (HH:MM:SS `withSeconds`). */
  function formatTime(iso, withSeconds) {
    if (!iso) return "";
    const p = parts(new Date(iso), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    return p.hour + ":" + p.minute + (withSeconds ? ":" + p.second : "");
  }

  /** The bureau's help number (YOUDAI_HELP_PHONE), or "". */
  function helpPhone() {
    const meta = document.querySelector('meta[name="youdai-help-phone"]');
    return (meta && meta.content) || "";
  }

  /** A random UUID; crypto.randomUUID needs HTTPS, a till on plain HTTP still gets one. */
  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function" && window.isSecureContext) {
      return window.crypto.randomUUID();
    }
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  /**
   * Call the API. Resolves (never rejects) to {ok, status, data, response, problem};
   * a failed connection is the client-side problem `network_error`.
   */
  async function api(method, path, options) {
    const opts = options || {};
    const headers = { Accept: opts.accept || "application/json" };
    if (opts.token) headers.Authorization = "Bearer " + opts.token;
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    Object.assign(headers, opts.headers || {});
    let response;
    try {
      response = await fetch(path, {
        method: method,
        headers: headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (error) {
      return { ok: false, status: 0, problem: { code: "network_error" } };
    }
    const type = response.headers.get("Content-Type") || "";
    if (response.ok && opts.raw) return { ok: true, status: response.status, response: response };
    let data = null;
    if (type.includes("json")) {
      try {
        data = await response.json();
      } catch (error) {
        data = null;
      }
    }
    if (response.ok) return { ok: true, status: response.status, data: data, response: response };
    const problem = data && data.code ? data : { code: response.status >= 500 ? "internal_error" : "bad_request" };
    return { ok: false, status: response.status, problem: problem, response: response };
  }

  /** Show a text in an element that is hidden while empty; `kind` styles it. */
  function say(element, text, kind) {
    element.textContent = text || "";
    element.hidden = !text;
    element.dataset.kind = kind || "";
  }

  return {
    api: api,
    applyTexts: applyTexts,
    formatDate: formatDate,
    formatLastDay: formatLastDay,
    formatTime: formatTime,
    helpPhone: helpPhone,
    formatFen: formatFen,
    language: language,
    newId: newId,
    onLanguageChange: onLanguageChange,
    parseYuan: parseYuan,
    problemText: problemText,
    say: say,
    start: start,
    t: t,
  };
})();
