/* Who is signed in: the staff account of GET /v1/staff/me, or null. */

import { api, setCsrfToken } from "./api.js";

let staff = null;

export function signedIn() {
  return staff;
}

/** Read the session from the service (the cookie); null when there is none. */
export async function load() {
  const answer = await api("GET", "/v1/staff/me", { quiet: true });
  if (!answer.ok) {
    staff = null;
    return answer.status === 401 || answer.status === 404 ? null : answer;
  }
  const data = answer.data || {};
  staff = data.staff || data;
  if (data.csrf_token) setCsrfToken(data.csrf_token);
  return staff;
}

/** Keep the sign-in answer: the account and the CSRF token for every change. */
export function remember(answer) {
  staff = answer.staff;
  setCsrfToken(answer.csrf_token);
}

export async function signOut() {
  await api("DELETE", "/v1/staff-sessions/current", { quiet: true });
  staff = null;
  setCsrfToken("");
}

export function forget() {
  staff = null;
  setCsrfToken("");
}

/** True when this account must enrol a second factor before it can do anything else. */
export function mustEnrol(account) {
  const who = account || staff;
  return Boolean(who && who.must_enrol_totp);
}
