/* Calls of the /v1 API, for the console and the pages alike: JSON in and out, a problem
 * answer (application/problem+json) as {ok: false, problem}, a failed connection as the
 * client-side problem `network_error`. Accept-Language follows the page's language, so
 * the server's words come in the one shown.
 *
 * Two ways to say who calls:
 * - the pages pass a bearer token (`token`: a scanner key, a holder session) and send no
 *   cookie, so a staff session in the same browser never changes what they are answered;
 * - the console calls useStaffSession() once: the cookie `youdai_staff` goes along (same
 *   origin) and every call but GET/HEAD carries X-CSRF-Token, the token of the sign-in
 *   answer (kept in sessionStorage: gone when the tab closes).
 */

import { language } from "./i18n.js";

const CSRF_KEY = "youdai.console.csrf";
let staffSession = false;
let onSignedOut = null;

/** The console's calls go with the staff session cookie and its CSRF token. */
export function useStaffSession() {
  staffSession = true;
}

export function setCsrfToken(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

export function csrfToken() {
  return sessionStorage.getItem(CSRF_KEY) || "";
}

/** Called when an answer says the staff session is over (401 unauthenticated). */
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
  return text ? path + (path.includes("?") ? "&" : "?") + text : path;
}

/**
 * Call the API. Resolves (never rejects) to {ok, status, data, problem, response}.
 * Options: token (a bearer token), body (JSON), raw + contentType (a File or Blob, sent
 * byte for byte: the server judges its encoding), query, accept, headers (more of them:
 * an Idempotency-Key), asResponse (a successful answer is left unread, in `response`: an
 * image), quiet (no sign-out on 401).
 */
export async function api(method, path, options) {
  const opts = options || {};
  const headers = {
    Accept: opts.accept || "application/json",
    "Accept-Language": language() === "en" ? "en" : "zh-CN",
  };
  if (opts.token) headers.Authorization = "Bearer " + opts.token;
  Object.assign(headers, opts.headers || {});
  let body;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  } else if (opts.raw !== undefined) {
    headers["Content-Type"] = opts.contentType || "application/octet-stream";
    body = opts.raw;
  }
  if (staffSession && method !== "GET" && method !== "HEAD") {
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
      credentials: staffSession ? "same-origin" : "omit",
    });
  } catch (error) {
    return { ok: false, status: 0, problem: { code: "network_error" } };
  }
  if (response.ok && opts.asResponse) return { ok: true, status: response.status, response: response };
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
  if (staffSession && response.status === 401 && problem.code === "unauthenticated" && !opts.quiet && onSignedOut) {
    onSignedOut();
  }
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
