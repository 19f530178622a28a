/* /wallet — the holder's phone: sign in with card number and PIN, see offers and own
 * vouchers, claim, and show a voucher's QR code. The code carries a short-lived token,
 * so the page fetches a new one before it expires and counts down to it.
 */

import { api } from "./api.js";
import { formatLastDay, helpPhone, say, start } from "./common.js";
import { language, onLanguageChange, problemText, t } from "./i18n.js";
import { formatFen } from "./money.js";

const SESSION_STORE = "youdai.session";
const POLL_MS = 5000;
const RETRY_MS = 5000;
const $ = (id) => document.getElementById(id);

const el = {
  notice: $("notice"),
  signOut: $("sign-out"),
  signIn: $("sign-in"),
  signInForm: $("sign-in-form"),
  card: $("card"),
  pin: $("pin"),
  signInProblem: $("sign-in-problem"),
  home: $("home"),
  greeting: $("greeting"),
  vouchers: $("vouchers"),
  vouchersEmpty: $("vouchers-empty"),
  offers: $("offers"),
  offersEmpty: $("offers-empty"),
  voucher: $("voucher"),
  back: $("back"),
  voucherTitle: $("voucher-title"),
  voucherPartner: $("voucher-partner"),
  voucherTerms: $("voucher-terms"),
  qrFrame: $("qr-frame"),
  qr: $("qr"),
  countdown: $("countdown"),
  countdownBar: $("countdown-bar"),
  voucherStatus: $("voucher-status"),
  voucherUses: $("voucher-uses"),
  refresh: $("refresh"),
  qrCaption: $("qr-caption"),
  codeBox: $("code-box"),
  voucherCode: $("voucher-code"),
  barcode: $("barcode"),
  voucherDone: $("voucher-done"),
  lastAttempt: $("last-attempt"),
  textSize: $("text-size"),
  help: $("help"),
  helpPhone: $("help-phone"),
};
const LARGE_STORE = "youdai.large_text";
const FAILS_STORE = "youdai.pin_failures";
const LOCK_AFTER = 5; // wrong PINs in 15 minutes lock the card (docs/api.md)
const FAIL_WINDOW_MS = 15 * 60 * 1000;
let wakeLock = null;

let session = readSession();
let me = null;
let vouchers = [];
let offers = [];
let notice = null; // {kind, text: () => string}, redrawn on language change
let sessionTimer = null;
/** The voucher on screen and its QR timers. */
let shown = null;

function readSession() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_STORE) || "null");
    if (saved && saved.token && Date.parse(saved.expires_at) > Date.now()) return saved;
  } catch (error) {
    // an unreadable session is no session
  }
  localStorage.removeItem(SESSION_STORE);
  return null;
}

function showNotice(kind, text) {
  notice = text ? { kind: kind, text: text } : null;
  say(el.notice, notice ? notice.text() : "", kind);
}

// ----- signing in and out -----

function showSignIn() {
  el.signIn.hidden = false;
  el.home.hidden = true;
  el.voucher.hidden = true;
  el.signOut.hidden = true;
  el.pin.value = "";
  (el.card.value ? el.pin : el.card).focus();
}

async function signIn(event) {
  event.preventDefault();
  const card = el.card.value.trim();
  const pin = el.pin.value;
  if (!card || !pin) {
    say(el.signInProblem, t("sign_in_missing"), "problem");
    (card ? el.pin : el.card).focus();
    return;
  }
  const button = el.signInForm.querySelector("button[type=submit]");
  button.disabled = true;
  const answer = await api("POST", "/v1/holder-sessions", { body: { card_number: card, pin: pin } });
  button.disabled = false;
  if (!answer.ok) {
    const code = answer.problem.code;
    let text = code === "unauthenticated" ? t("sign_in_wrong") : problemText(answer.problem);
    if (code === "too_many_attempts") text = lockedText(answer.response);
    say(el.signInProblem, text, "problem");
    if (code === "unauthenticated") countFailure(card);
    drawLastAttempt(card);
    if (code === "too_many_attempts") el.lastAttempt.hidden = true; // no "one more" once locked
    el.pin.value = "";
    el.pin.focus();
    return;
  }
  forgetFailures(card);
  drawLastAttempt(card);
  session = { token: answer.data.token, expires_at: answer.data.expires_at };
  localStorage.setItem(SESSION_STORE, JSON.stringify(session));
  say(el.signInProblem, "");
  el.pin.value = "";
  showNotice("", null);
  enterHome();
}

/** The attempt that locks the card, and every one while it is locked: for how long,
 * and whom to call (the server counts the attempts and sets the lock). */
function lockedText(response) {
  const seconds = Number((response && response.headers.get("Retry-After")) || 900);
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  const phone = helpPhone();
  return phone ? t("card_locked_call", { minutes: minutes, phone: phone }) : t("card_locked", { minutes: minutes });
}

function signOut(reasonKey, kind) {
  closeVoucher(false);
  clearTimeout(sessionTimer);
  session = null;
  me = null;
  vouchers = [];
  offers = [];
  localStorage.removeItem(SESSION_STORE);
  el.vouchers.replaceChildren();
  el.offers.replaceChildren();
  showNotice(kind === undefined ? "problem" : kind, () => t(reasonKey));
  showSignIn();
}

/** The holder's own "sign out": forgotten here at once, and on the server too, so a
 * copy of the token stops working (offline, it still expires on its own). */
function signOutNow() {
  const token = session && session.token;
  signOut("signed_out", "");
  if (token) api("DELETE", "/v1/me/session", { token: token });
}

function sessionEnded() {
  signOut("session_ended");
}

/** Wrong PINs this browser saw per card in the last 15 minutes: before the attempt
 * that would lock the card, the holder is warned. */
function failures() {
  try {
    return JSON.parse(localStorage.getItem(FAILS_STORE) || "{}");
  } catch (error) {
    return {};
  }
}

function recentFailures(card) {
  return (failures()[card] || []).filter((at) => Date.now() - at < FAIL_WINDOW_MS);
}

function countFailure(card) {
  const all = failures();
  all[card] = [...recentFailures(card), Date.now()];
  localStorage.setItem(FAILS_STORE, JSON.stringify(all));
}

function forgetFailures(card) {
  const all = failures();
  delete all[card];
  localStorage.setItem(FAILS_STORE, JSON.stringify(all));
}

function drawLastAttempt(card) {
  el.lastAttempt.hidden = recentFailures(card).length !== LOCK_AFTER - 1;
}

// ----- large text, help -----

function drawTextSize() {
  const large = localStorage.getItem(LARGE_STORE) === "1";
  document.documentElement.classList.toggle("large-text", large);
  el.textSize.textContent = t("large_text");
  el.textSize.setAttribute("aria-pressed", large ? "true" : "false");
}

function drawHelp() {
  const phone = helpPhone();
  el.help.hidden = !phone;
  el.helpPhone.textContent = phone;
  el.helpPhone.href = "tel:" + phone.replace(/[^\d+]/g, "");
}

// ----- the screen stays awake while a QR code is shown, where the browser allows -----

async function keepAwake() {
  if (!("wakeLock" in navigator) || wakeLock || !shown || shown.stopped || document.hidden) return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => {
      wakeLock = null;
    });
  } catch (error) {
    wakeLock = null; // not allowed (battery saver, no user gesture): the QR still shows
  }
}

function letSleep() {
  if (wakeLock) wakeLock.release().catch(() => {});
  wakeLock = null;
}

// ----- offers and vouchers -----

async function all(path) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < 10; page++) {
    const query = "?limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    const answer = await api("GET", path + query, { token: session.token });
    if (!answer.ok) return answer;
    items.push(...answer.data.items);
    cursor = answer.data.next_cursor;
    if (!cursor) break;
  }
  return { ok: true, items: items };
}

async function enterHome() {
  el.signIn.hidden = true;
  el.signOut.hidden = false;
  el.home.hidden = false;
  clearTimeout(sessionTimer);
  sessionTimer = setTimeout(sessionEnded, Math.max(0, Date.parse(session.expires_at) - Date.now()));
  await loadHome();
}

async function loadHome() {
  el.home.setAttribute("aria-busy", "true");
  const [meAnswer, voucherAnswer, offerAnswer] = await Promise.all([
    api("GET", "/v1/me", { token: session.token }),
    all("/v1/me/vouchers"),
    all("/v1/me/offers"),
  ]);
  el.home.removeAttribute("aria-busy");
  const failed = [meAnswer, voucherAnswer, offerAnswer].find((a) => !a.ok);
  if (failed) {
    if (failed.problem.code === "unauthenticated") return sessionEnded();
    if (failed.problem.code === "holder_inactive") return signOut("card_inactive");
    showNotice("problem", () => problemText(failed.problem));
    return;
  }
  me = meAnswer.data;
  vouchers = voucherAnswer.items;
  offers = offerAnswer.items;
  drawHome();
}

function activeVoucherFor(offerId) {
  return vouchers.find((v) => v.offer_id === offerId && v.status === "active");
}

/** The offer's rules in words, as the service wrote them (no page works them out again). */
function terms(offer) {
  return offer.terms[language()];
}

function card(title, lines, buttons, kind) {
  const item = document.createElement("li");
  item.className = "card" + (kind ? " card-" + kind : "");
  const heading = document.createElement("h3");
  heading.textContent = title;
  item.append(heading);
  for (const [className, text] of lines) {
    if (!text) continue;
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    item.append(p);
  }
  if (buttons.length) {
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(...buttons);
    item.append(actions);
  }
  return item;
}

function button(textKey, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = t(textKey);
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function drawHome() {
  if (!me) return;
  el.greeting.textContent = t("greeting", { name: me.display_name, category: t("category_" + me.category) });
  const order = { active: 0, used_up: 1, expired: 2, revoked: 3 };
  const sorted = [...vouchers].sort((a, b) => (order[a.status] ?? 9) - (order[b.status] ?? 9));
  el.vouchers.replaceChildren(
    ...sorted.map((v) =>
      card(
        v.offer.title,
        [
          ["partner", v.offer.partner_name],
          ["status status-" + v.status, t("voucher_status_" + v.status)],
          ["hint", v.status === "active" ? t("uses_left", { n: v.uses_left }) : ""],
          ["hint", t("valid_through", { date: formatLastDay(v.expires_at) })],
        ],
        v.status === "active" ? [button("show_qr", () => openVoucher(v), "primary")] : [],
        v.status,
      ),
    ),
  );
  el.vouchersEmpty.hidden = vouchers.length > 0;
  el.offers.replaceChildren(
    ...offers.map((o) => {
      const held = activeVoucherFor(o.id);
      const action = held
        ? button("show_qr", () => openVoucher(held), "primary")
        : button("claim", (event) => claim(o, event.currentTarget), "primary");
      return card(
        o.title,
        [
          ["partner", o.partner_name],
          ["terms", terms(o)],
          ["description", o.description],
          ["hint", held ? t("already_claimed") : ""],
        ],
        [action],
      );
    }),
  );
  el.offersEmpty.hidden = offers.length > 0;
}

async function claim(offer, claimButton) {
  claimButton.disabled = true;
  const answer = await api("POST", "/v1/me/vouchers", { token: session.token, body: { offer_id: offer.id } });
  claimButton.disabled = false;
  if (!answer.ok) {
    if (answer.problem.code === "unauthenticated") return sessionEnded();
    showNotice("problem", () => problemText(answer.problem));
    return;
  }
  const voucher = answer.data;
  vouchers = [voucher, ...vouchers.filter((v) => v.id !== voucher.id)];
  showNotice("success", () => t("claimed", { title: voucher.offer.title }));
  openVoucher(voucher);
}

// ----- one voucher's QR code -----

function openVoucher(voucher) {
  closeVoucher(false);
  shown = {
    voucher: voucher,
    url: null,
    deadline: 0,
    lifetime: 0,
    refreshTimer: null,
    tickTimer: setInterval(tick, 1000),
    pollTimer: setInterval(poll, POLL_MS),
    stopped: null, // the problem that ended showing the code
  };
  el.home.hidden = true;
  el.voucher.hidden = false;
  el.qr.hidden = true;
  el.qr.dataset.state = "loading";
  say(el.voucherStatus, "");
  drawVoucher();
  window.scrollTo(0, 0);
  refreshQr();
  el.back.focus();
}

function drawVoucher() {
  if (!shown) return;
  const v = shown.voucher;
  el.voucherTitle.textContent = v.offer.title;
  el.voucherPartner.textContent = v.offer.partner_name;
  el.voucherTerms.textContent = terms(v.offer);
  el.voucherUses.textContent =
    v.status === "active"
      ? t("uses_left", { n: v.uses_left }) + " · " + t("valid_through", { date: formatLastDay(v.expires_at) })
      : "";
  const service = v.offer.kind === "service";
  const saved = shown.redeemed && v.saved_total > 0;
  el.voucherDone.hidden = !saved && !(shown.stopped && shown.stopped.code === "voucher_used_up");
  el.voucherDone.textContent = saved
    ? t(service ? "saved_service" : "saved_done", { amount: formatFen(v.saved_total) })
    : t("used_up_done");
  const usedUp = shown.stopped && shown.stopped.code === "voucher_used_up";
  if (shown.stopped && !usedUp) say(el.voucherStatus, stoppedText(shown.stopped), "problem");
  if (usedUp) say(el.voucherStatus, "");
  // Never a "show this QR" prompt beside an error, nor without a QR.
  const problem = !el.voucherStatus.hidden || !!shown.stopped;
  el.qrCaption.hidden = problem || el.qr.hidden;
  el.codeBox.hidden = !!shown.stopped || el.qr.hidden;
  el.refresh.hidden = !!shown.stopped;
  tick();
}

/** Why a voucher shows no QR code: in the wallet's own words where it has them. */
function stoppedText(problem) {
  if (problem.code === "offer_inactive") return t("blocked_offer_inactive");
  if (problem.code === "partner_inactive") return t("blocked_partner_inactive");
  if (problem.code === "holder_ineligible") return t("blocked_holder_ineligible");
  return problemText(problem);
}

/** Fetch a new QR image; the old one stays on screen until the new one is ready. */
async function refreshQr() {
  if (!shown || shown.stopped) return;
  const current = shown;
  clearTimeout(current.refreshTimer);
  el.refresh.disabled = true;
  const answer = await api("GET", "/v1/me/vouchers/" + encodeURIComponent(current.voucher.id) + "/qr.svg", {
    token: session.token,
    accept: "image/svg+xml",
    asResponse: true,
  });
  el.refresh.disabled = false;
  if (shown !== current) return; // closed meanwhile
  if (!answer.ok) {
    const code = answer.problem.code;
    if (code === "unauthenticated") return sessionEnded();
    if (code === "holder_inactive") return signOut("card_inactive");
    // The voucher cannot be used now (docs/api.md): say why, in place of the QR code.
    if ((answer.status === 409 && code !== "conflict") || code === "not_found") return stopShowing(answer.problem);
    say(el.voucherStatus, problemText(answer.problem) + " " + t("retrying"), "problem");
    drawVoucher();
    current.refreshTimer = setTimeout(refreshQr, RETRY_MS);
    return;
  }
  const response = answer.response;
  const expiresAt = Date.parse(response.headers.get("X-Token-Expires-At"));
  // Count with the server's clock: a phone's clock may be minutes off.
  const serverNow = Date.parse(response.headers.get("Date") || "") || Date.now();
  const code = response.headers.get("X-Voucher-Code") || "";
  const blob = await response.blob();
  if (shown !== current) return;
  el.voucherCode.textContent = code.replace(/(\d{3})(?=\d)/g, "$1 ");
  drawBarcode(current, code);
  const url = URL.createObjectURL(blob);
  el.qr.src = url;
  try {
    await el.qr.decode();
  } catch (error) {
    // shown anyway once loaded; the countdown still tells when it expires
  }
  if (current.url) URL.revokeObjectURL(current.url);
  current.url = url;
  current.lifetime = Math.max(1000, expiresAt - serverNow);
  current.deadline = Date.now() + current.lifetime;
  // Refresh a little before the end: a fifth of the lifetime, between 5 and 30 seconds.
  const margin = Math.min(30000, Math.max(5000, current.lifetime / 5));
  current.refreshTimer = setTimeout(refreshQr, Math.max(1000, current.lifetime - margin));
  el.qr.hidden = false;
  el.qr.dataset.state = "shown";
  el.qr.dataset.expiresAt = new Date(expiresAt).toISOString();
  el.qrFrame.classList.remove("stale");
  say(el.voucherStatus, "");
  drawVoucher();
  keepAwake();
}

/** The barcode of the very code this QR came with (no new minting). */
async function drawBarcode(current, code) {
  if (!code) return;
  const answer = await api(
    "GET",
    "/v1/me/vouchers/" + encodeURIComponent(current.voucher.id) + "/barcode.svg?code=" + code,
    { token: session.token, accept: "image/svg+xml", asResponse: true },
  );
  if (!answer.ok || shown !== current) return;
  const url = URL.createObjectURL(await answer.response.blob());
  if (current.barcodeUrl) URL.revokeObjectURL(current.barcodeUrl);
  current.barcodeUrl = url;
  el.barcode.src = url;
}

function tick() {
  if (!shown) return;
  if (shown.stopped) {
    el.countdown.textContent = "";
    el.countdownBar.hidden = true;
    return;
  }
  el.countdownBar.hidden = false;
  if (!shown.deadline) {
    el.countdown.textContent = t("qr_loading");
    return;
  }
  const left = Math.max(0, shown.deadline - Date.now());
  const seconds = Math.ceil(left / 1000);
  const clock = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  el.countdown.textContent = left > 0 ? t("qr_valid_for", { time: clock }) : t("qr_expired");
  el.countdownBar.value = Math.round((100 * left) / shown.lifetime);
  if (left <= 0) {
    el.qrFrame.classList.add("stale");
    el.qr.dataset.state = "expired";
  }
}

/** Notice at once when the till redeemed the voucher (or a refund gave a use back). */
async function poll() {
  if (!shown || shown.stopped || document.hidden) return;
  const current = shown;
  const answer = await api("GET", "/v1/me/vouchers/" + encodeURIComponent(current.voucher.id), {
    token: session.token,
  });
  if (shown !== current || !answer.ok) {
    if (answer.problem && answer.problem.code === "unauthenticated") sessionEnded();
    return;
  }
  const fresh = answer.data;
  const used = fresh.uses_left < current.voucher.uses_left;
  current.voucher = fresh;
  vouchers = vouchers.map((v) => (v.id === fresh.id ? fresh : v));
  if (used) current.redeemed = true; // say what was saved, beside the voucher
  if (fresh.status !== "active") {
    const code = fresh.status === "used_up" ? "voucher_used_up" : "voucher_" + fresh.status;
    return stopShowing({ code: code });
  }
  drawVoucher();
}

function stopShowing(problem) {
  shown.stopped = problem;
  clearTimeout(shown.refreshTimer);
  el.qr.hidden = true;
  el.qr.dataset.state = "stopped";
  letSleep();
  drawVoucher();
}

function closeVoucher(reload) {
  if (!shown) return;
  clearTimeout(shown.refreshTimer);
  clearInterval(shown.tickTimer);
  clearInterval(shown.pollTimer);
  if (shown.url) URL.revokeObjectURL(shown.url);
  if (shown.barcodeUrl) URL.revokeObjectURL(shown.barcodeUrl);
  shown = null;
  letSleep();
  el.barcode.removeAttribute("src");
  el.voucherCode.textContent = "";
  el.voucherDone.hidden = true;
  el.refresh.hidden = false;
  el.qr.removeAttribute("src");
  el.qr.dataset.state = "";
  el.refresh.disabled = false;
  el.voucher.hidden = true;
  if (reload) {
    el.home.hidden = false;
    loadHome();
  }
}

// A phone wakes up with a stale code: fetch a new one at once.
document.addEventListener("visibilitychange", function () {
  if (!document.hidden && shown && !shown.stopped && shown.deadline - Date.now() < 30000) refreshQr();
  if (!document.hidden) keepAwake(); // a lock is released when the page is hidden
});

el.signInForm.addEventListener("submit", signIn);
el.signOut.addEventListener("click", signOutNow);
el.back.addEventListener("click", () => {
  showNotice("", null);
  closeVoucher(true);
});
el.refresh.addEventListener("click", refreshQr);
el.textSize.addEventListener("click", () => {
  localStorage.setItem(LARGE_STORE, document.documentElement.classList.contains("large-text") ? "0" : "1");
  drawTextSize();
});
el.card.addEventListener("change", () => drawLastAttempt(el.card.value.trim()));

onLanguageChange(function () {
  drawHome();
  drawVoucher();
  drawTextSize();
  if (notice) showNotice(notice.kind, notice.text);
});

start().then(function () {
  drawTextSize();
  drawHelp();
  if (session) enterHome();
  else showSignIn();
});
