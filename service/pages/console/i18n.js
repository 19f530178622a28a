/* Texts in Chinese and English from one file (messages.json), the choice remembered.
 *
 * The page links messages.json by its hashed name in a <link rel="preload">; every text
 * the console shows, every problem code's plain words included, is written there.
 */

const LANG_KEY = "youdai.console.lang";
let messages = { ui: {}, problems: {} };
let lang = "zh";
const listeners = [];

export async function loadMessages() {
  const link = document.querySelector('link[rel="preload"][as="fetch"]');
  const response = await fetch(link.getAttribute("href"));
  messages = await response.json();
  const saved = localStorage.getItem(LANG_KEY);
  if (saved === "zh" || saved === "en") lang = saved;
  else lang = document.documentElement.lang.toLowerCase().startsWith("en") ? "en" : "zh";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

/** A UI text in the current language, {name} placeholders filled from `vars`. */
export function t(key, vars) {
  return textIn(lang, key, vars);
}

/** A UI text in the language given, whatever the console's (a printed statement is in
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

export function setLanguage(next) {
  lang = next;
  localStorage.setItem(LANG_KEY, next);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const listener of listeners) listener(lang);
}

export function onLanguageChange(listener) {
  listeners.push(listener);
}
