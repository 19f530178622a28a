/* Calls of the /v1 API with the staff session: the cookie `youdai_staff` goes along
 * (same origin) and every call but GET/HEAD carries X-CSRF-Token, the token of the
 * sign-in answer (kept in sessionStorage: gone when the tab closes). Accept-Language
 * follows the console's language, so the server's words come in the one shown.
 */

import { language } from "./i18n.js";

const CSRF_KEY = "youdai.console.csrf";
let onSignedOut = null;

export function setCsrfToken(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

export function csrfToken() {
  return sessionStorage.getItem(CSRF_KEY) || "";
}

/** Called when an answer says the session is over (401 unauthenticated). */
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

/** `path` with the query parameters of `params` that are set. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? path + "?" + text : path;
}

/**
 * Call the API. Resolves (never rejects) to {ok, status, data, problem, response};
 * a failed connection is the client-side problem `network_error`.
 * Options: body (JSON), raw + contentType (a File or Blob, sent byte for byte: the
 * server judges its encoding), query, quiet (no sign-out on 401).
 */
export async function api(method, path, options) {
  const opts = options || {};
  const headers = { Accept: "application/json", "Accept-Language": language() === "en" ? "en" : "zh-CN" };
  let body;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  } else if (opts.raw !== undefined) {
    headers["Content-Type"] = opts.contentType || "application/octet-stream";
    body = opts.raw;
  }
  if (method !== "GET" && method !== "HEAD") {
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  let response;
  try {
    response = await fetch(withQuery(path, opts.query), {
      method: method,
      headers: headers,
      body: body,
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (error) {
    return { ok: false, status: 0, problem: { code: "network_error" } };
  }
  let data = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) {
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
  }
  if (response.ok) return { ok: true, status: response.status, data: data, response: response };
  const problem = data && data.code ? data : { code: response.status >= 500 ? "internal_error" : "bad_request" };
  if (response.status === 401 && problem.code === "unauthenticated" && !opts.quiet && onSignedOut) onSignedOut();
  return { ok: false, status: response.status, problem: problem, response: response };
}

/** Every item of a list, following next_cursor (for small lists: partners, offers). */
export async function listAll(path, query, limit) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < (limit || 20); page += 1) {
    const answer = await api("GET", path, { query: Object.assign({}, query, { limit: 200, cursor: cursor }) });
    if (!answer.ok) return answer;
    items.push(...answer.data.items);
    cursor = answer.data.next_cursor;
    if (!cursor) break;
  }
  return { ok: true, data: { items: items } };
}
