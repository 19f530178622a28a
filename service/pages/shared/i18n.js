/* Texts in Chinese and English from one file (messages.json), the choice remembered.
 *
 * The console and the pages share messages.json: each page links it by its hashed name
 * in a <link rel="preload">; every text they show, every problem code's plain words
 * included (one wording per code, whichever page shows it), is written there.
 */

let messages = { ui: {}, problems: {} };
let lang = "zh";
let storageKey = "youdai.lang";
const listeners = [];

/** Load the texts and pick the language: the one chosen before on this page (kept under
 * `key`), else the one the service chose from Accept-Language when it served the page. */
export async function loadMessages(key) {
  if (key) storageKey = key;
  const link = document.querySelector('link[rel="preload"][as="fetch"]');
  const response = await fetch(link.getAttribute("href"));
  messages = await response.json();
  const saved = localStorage.getItem(storageKey);
  if (saved === "zh" || saved === "en") lang = saved;
  else lang = document.documentElement.lang.toLowerCase().startsWith("en") ? "en" : "zh";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

/** A UI text in the current language, {name} placeholders filled from `vars`. */
export function t(key, vars) {
  return textIn(lang, key, vars);
}

/** A UI text in the language given, whatever the page's (a printed statement is in
 * Chinese for the annual report). */
export function textIn(language, key, vars) {
  const entry = messages.ui[key];
  let text = entry ? entry[language] : key;
  if (vars) {
    for (const [name, value] of Object.entries(vars)) text = text.split("{" + name + "}").join(String(value));
  }
  return text;
}

/** True when messages.json has a text for `key`. */
export function has(key) {
  return Object.prototype.hasOwnProperty.call(messages.ui, key);
}

/** The plain words for a problem answer (application/problem+json). */
export function problemText(problem) {
  const code = (problem && problem.code) || "internal_error";
  const entry = messages.problems[code];
  return entry ? entry[lang] : t("unknown_problem", { code: code });
}

export function language() {
  return lang;
}

/** Switch the language (remembered unless `remember` is false), fill the HTML's texts,
 * then tell every listener (which redraw the texts they wrote). */
export function setLanguage(next, remember) {
  lang = next;
  if (remember !== false) localStorage.setItem(storageKey, next);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  applyTexts();
  for (const listener of listeners) listener(lang);
}

export function onLanguageChange(listener) {
  listeners.push(listener);
}

/** Fill the texts the HTML names: data-i18n (text), data-i18n-placeholder,
 * data-i18n-label (aria-label) and data-i18n-alt. */
export function applyTexts(root) {
  const scope = root || document;
  for (const element of scope.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of scope.querySelectorAll("[data-i18n-placeholder]")) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
  for (const element of scope.querySelectorAll("[data-i18n-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nLabel));
  }
  for (const element of scope.querySelectorAll("[data-i18n-alt]")) element.alt = t(element.dataset.i18nAlt);
}

/** A button that switches to the other language: its accessible name is its visible text
 * ("English" / "中文"), in that language. */
export function languageToggle(button) {
  const draw = function () {
    button.textContent = t("other_language");
    button.setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
    button.title = t("switch_language");
  };
  button.addEventListener("click", () => setLanguage(lang === "zh" ? "en" : "zh"));
  onLanguageChange(draw);
  if (has("other_language")) draw();
}
