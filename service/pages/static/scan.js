/* /scan — the till. A USB scanner types the voucher code and presses Enter; the code
 * input keeps the focus so that lands there. Enter moves on: code → amount → preview →
 * confirm. Escape cancels. Everything works without a mouse.
 */

import { api } from "./api.js";
import { formatTime, newId, parseYuan, say, start } from "./common.js";
import { language, onLanguageChange, problemText, t } from "./i18n.js";
import { formatFen } from "./money.js";
import * as O from "./offline.js";

const KEY_STORE = "youdai.scanner_key";
const DOUBLE_SCAN_MS = 2 * 60 * 1000;
/** docs/pages.md: the till pack is fetched again at least every 5 minutes while online. */
const PACK_EVERY_MS = 4 * 60 * 1000;
/** Offline redemptions are sent when the network is back, and tried again this often. */
const SEND_EVERY_MS = 30 * 1000;
const $ = (id) => document.getElementById(id);

const el = {
  changeKey: $("change-key"),
  keySetup: $("key-setup"),
  keyForm: $("key-form"),
  keyInput: $("key-input"),
  keyProblem: $("key-problem"),
  keyCancel: $("key-cancel"),
  till: $("till"),
  scanForm: $("scan-form"),
  code: $("code"),
  amount: $("amount"),
  reference: $("reference"),
  clear: $("clear-button"),
  preview: $("preview"),
  previewOffer: $("preview-offer"),
  previewTerms: $("preview-terms"),
  previewPurchase: $("preview-purchase"),
  previewDiscount: $("preview-discount"),
  previewPayable: $("preview-payable"),
  previewUses: $("preview-uses"),
  confirm: $("confirm"),
  cancel: $("cancel"),
  outcome: $("outcome"),
  identity: $("till-identity"),
  previewDiscountRow: $("preview-discount-row"),
  previewService: $("preview-service"),
  previewDouble: $("preview-double"),
  today: $("today"),
  todayList: $("today-list"),
  reverseForm: $("reverse-form"),
  reverseQuestion: $("reverse-question"),
  reverseReason: $("reverse-reason"),
  reverseCancel: $("reverse-cancel"),
  networkState: $("network-state"),
  waiting: $("waiting"),
  packAge: $("pack-age"),
};

let scannerKey = localStorage.getItem(KEY_STORE) || "";
/** The redemption being decided: {key, token, fen, preview}. Its Idempotency-Key is
 * made once, when the preview succeeds, and sent again on every retry of it. */
let attempt = null;
let busy = false;
let outcome = null; // {kind, title, lines, note}: functions of the language, redrawn on a change
let till = null; // {partner_name, label} of the key
let today = []; // this key's redemptions of today, newest first
let reversing = null; // the redemption the reverse form is about
let kept = null; // the till pack as last fetched: {pack, fetched_at}
let waiting = 0; // offline redemptions not yet answered by the service
let unreachable = false; // the last call to the service found no network
let offlineCapable = false; // this browser verifies Ed25519 (WebCrypto)
let sending = false;

function mode() {
  if (!el.keySetup.hidden) return "key";
  if (!el.reverseForm.hidden) return "reverse";
  if (!el.preview.hidden) return "preview";
  return "scan";
}

/** Where the focus belongs now: the scanner's text must never land nowhere. */
function focusTarget() {
  switch (mode()) {
    case "key":
      return el.keyInput;
    case "reverse":
      return el.reverseReason;
    case "preview":
      return el.confirm;
    default:
      return el.code;
  }
}

function refocus() {
  const target = focusTarget();
  if (!target.disabled) target.focus();
}

// ----- outcome: the result or the reason, in plain words -----

function showOutcome(kind, title, lines, note) {
  outcome = { kind: kind, title: title, lines: lines || (() => []), note: note || (() => "") };
  drawOutcome();
}

function clearOutcome() {
  outcome = null;
  drawOutcome();
}

function drawOutcome() {
  el.outcome.replaceChildren();
  el.outcome.hidden = !outcome;
  if (!outcome) {
    delete document.body.dataset.outcome;
    return;
  }
  el.outcome.dataset.kind = outcome.kind;
  document.body.dataset.outcome = outcome.kind;
  const head = document.createElement("p");
  head.className = "outcome-title";
  head.textContent = outcome.title();
  el.outcome.append(head);
  for (const line of outcome.lines()) {
    const p = document.createElement("p");
    p.className = "outcome-line";
    p.textContent = line;
    el.outcome.append(p);
  }
  const note = outcome.note();
  if (note) {
    const p = document.createElement("p");
    p.className = "outcome-note";
    p.textContent = note;
    el.outcome.append(p);
  }
}

/** A refusal in words, and what to do next (never the raw code). It stays on screen
 * until the next scan: what the cashier types meanwhile does not replace it. */
function showProblem(problem) {
  const title = () => (problem.code === "too_many_attempts" ? t("till_too_many") : problemText(problem));
  showOutcome("problem", title, () => [nextStep(problem)]);
  outcome.refusal = true;
}

function refusalShown() {
  return !!(outcome && outcome.refusal);
}

const RESCAN = ["token_invalid", "token_expired", "token_not_yet_valid"];
const FULL_PRICE = [
  "wrong_partner", "partner_inactive", "voucher_used_up", "voucher_expired", "voucher_revoked",
  "holder_inactive", "holder_ineligible", "offer_inactive", "offer_exhausted", "budget_exhausted",
  "holder_limit_reached",
];

const OFFLINE_BLOCKED = ["offline_unavailable", "offline_no_pack", "offline_pack_stale"];

function nextStep(problem) {
  const code = problem.code;
  if (code === "below_min_purchase") {
    const minimum = problem.min_purchase;
    return Number.isInteger(minimum) ? t("next_min_purchase", { amount: formatFen(minimum) }) : t("next_full_price");
  }
  if (RESCAN.includes(code)) return t("next_rescan");
  if (FULL_PRICE.includes(code)) return t("next_full_price");
  if (code === "too_many_attempts") return t("next_wait");
  if (code === "offline_code") return t("next_scan_qr");
  if (OFFLINE_BLOCKED.includes(code)) return t("next_offline_blocked");
  return t("next_try_again");
}

// ----- the scanner key -----

function showKeySetup() {
  el.keySetup.hidden = false;
  el.till.hidden = true;
  el.changeKey.hidden = true;
  el.keyCancel.hidden = !scannerKey;
  el.keyInput.value = "";
  say(el.keyProblem, "");
  el.keyInput.focus();
}

function showTill() {
  el.keySetup.hidden = true;
  el.till.hidden = false;
  el.changeKey.hidden = false;
  refocus();
  loadTill();
  loadToday();
  sendQueued();
  refreshPack();
}

async function loadTill() {
  const answer = await api("GET", "/v1/till", { token: scannerKey });
  if (!answer.ok) {
    // Offline: the pack says whose till this is.
    if (!till && kept) till = { partner_name: kept.pack.partner.name, label: kept.pack.till.label };
    drawIdentity();
    return;
  }
  till = answer.data;
  drawIdentity();
}

function drawIdentity() {
  el.identity.hidden = !till;
  if (till) el.identity.textContent = t("till_identity", { partner: till.partner_name, label: till.label });
}

async function saveKey(event) {
  event.preventDefault();
  const candidate = el.keyInput.value.trim();
  if (!candidate) {
    say(el.keyProblem, t("key_required"), "problem");
    return;
  }
  if (!/^[\x21-\x7e]+$/.test(candidate)) {
    say(el.keyProblem, t("key_rejected"), "problem");
    return;
  }
  if (busy) return;
  busy = true;
  // An empty preview proves the key without touching any voucher: a live scanner key
  // passes authentication and only then is refused for the missing fields.
  const answer = await api("GET", "/v1/till", { token: candidate });
  busy = false;
  if (answer.ok) {
    if (candidate !== scannerKey) {
      // Another till's key: the old key's pack says nothing about this one.
      kept = null;
      await O.dropPack().catch(() => {});
    }
    scannerKey = candidate;
    localStorage.setItem(KEY_STORE, scannerKey);
    clearOutcome();
    showTill();
    return;
  }
  const text =
    answer.problem.code === "unauthenticated"
      ? t("key_rejected")
      : answer.problem.code === "forbidden"
        ? t("key_not_scanner")
        : problemText(answer.problem);
  say(el.keyProblem, text, "problem");
  el.keyInput.select();
}

function keyRefused() {
  showKeySetup();
  say(el.keyProblem, t("key_rejected"), "problem");
}

// ----- scan, preview, confirm -----

/** A scanner that typed the code into the amount field: "128eyJhbGci…" → amount + code. */
function splitMisplacedCode() {
  const match = /^([\d.\uFF10-\uFF19\uFF0E\u3002]*)([A-Za-z][\w\-.]{19,})$/.exec(el.amount.value.trim());
  if (!match) return;
  el.amount.value = match[1];
  el.code.value = match[2];
}

/** Text a scanner could have sent: a voucher code or a compact JWS (three base64url
 * parts), not a few keys typed by hand. */
function looksScanned(text) {
  const body = scanned(text);
  return !!body.code || (/^[\w-]+\.[\w-]+\.[\w-]+$/.test(body.token) && body.token.length >= 40);
}

/** What was scanned: an 18-digit voucher code (docs/product.md) or a QR's token. */
function scanned(text) {
  const digits = text.replace(/\s+/g, "");
  return /^\d{18}$/.test(digits) ? { code: digits } : { token: text };
}

/** Enter after a scan: preview at once. A service offer needs no amount; a priced one
 * answers that it needs one, and the amount field takes the focus. */
function onCodeEnter() {
  if (!el.code.value.trim()) return;
  preview();
}

async function preview() {
  if (busy) return;
  splitMisplacedCode();
  const token = el.code.value.trim();
  if (refusalShown() && !looksScanned(token)) {
    // Keys typed while a refusal is shown: it stays, and no other error replaces it;
    // what was typed is set aside (the next customer starts with a scan).
    el.code.value = "";
    el.amount.value = "";
    el.code.focus();
    return;
  }
  if (!token) {
    showOutcome("problem", () => t("code_required"));
    el.code.focus();
    return;
  }
  const noAmount = el.amount.value.trim() === "";
  const amount = noAmount ? { fen: null } : parseYuan(el.amount.value);
  if (amount.error) {
    const key = amount.error;
    showOutcome("problem", () => t(key));
    el.amount.focus();
    el.amount.select();
    return;
  }
  busy = true;
  setBusy(true);
  clearOutcome();
  const body = scanned(token);
  if (amount.fen !== null) body.purchase_amount = amount.fen;
  const answer = navigator.onLine
    ? await api("POST", "/v1/redemptions/preview", { token: scannerKey, body: body })
    : { ok: false, problem: { code: "network_error" } };
  noteNetwork(answer);
  if (!answer.ok && answer.problem.code === "network_error") {
    setBusy(false); // the buttons it may focus are enabled; `busy` holds until it is done
    await previewOffline(body, noAmount);
    busy = false;
    return;
  }
  busy = false;
  setBusy(false);
  if (!answer.ok) {
    if (answer.problem.code === "unauthenticated") return keyRefused();
    const errors = answer.problem.errors || [];
    if (noAmount && answer.problem.code === "validation_error" && errors.some((e) => e.field === "purchase_amount")) {
      // A priced offer: the amount is all that is missing. The code stays.
      showOutcome("info", () => t("amount_needed"));
      el.amount.focus();
      return;
    }
    showProblem(answer.problem);
    // Nothing carries over to the next customer: code and amount are cleared.
    el.code.value = "";
    el.amount.value = "";
    el.code.focus();
    return;
  }
  const last = answer.data.last_redeemed_at ? Date.parse(answer.data.last_redeemed_at) : 0;
  attempt = {
    key: newId(),
    body: body,
    preview: answer.data,
    // A second redemption of this voucher within two minutes asks for a confirmation.
    doubleScan: last > 0 && Date.now() - last < DOUBLE_SCAN_MS,
    acknowledged: false,
  };
  drawPreview();
  el.preview.hidden = false;
  el.confirm.focus();
}

/** No network: the till checks the QR token itself, by its pack, and prices the purchase
 * by the service's rules (offline.js, pricing.js). A voucher code cannot be checked. */
async function previewOffline(body, noAmount) {
  const refuse = (code, extra) => {
    showProblem(Object.assign({ code: code }, extra || {}));
    el.code.value = "";
    el.amount.value = "";
    el.code.focus();
  };
  if (body.code) return refuse("offline_code");
  if (!offlineCapable) return refuse("offline_unavailable");
  if (!kept) return refuse("offline_no_pack");
  const now = Date.now();
  if (!O.fresh(kept.pack, now)) return refuse("offline_pack_stale");
  let voucherCheck, pricing;
  try {
    [voucherCheck, pricing] = await offlineScripts();
  } catch (error) {
    return refuse("offline_unavailable");
  }
  const checked = await voucherCheck.check(body.token, kept.pack, now);
  if (checked.problem) return refuse(checked.problem.code);
  const offer = checked.offer;
  if (noAmount && offer.kind !== "service") {
    showOutcome("info", () => t("amount_needed"));
    el.amount.focus();
    return;
  }
  const quote = pricing.quote(offer, body.purchase_amount || 0);
  if (quote.problem) return refuse(quote.problem.code, quote.problem);
  attempt = {
    key: newId(),
    body: body,
    offline: { voucher: checked.voucher },
    preview: Object.assign({ offer: { id: offer.id, title: offer.title, kind: offer.kind }, uses_left: null }, quote),
    doubleScan: false,
    acknowledged: false,
  };
  drawPreview();
  el.preview.hidden = false;
  el.confirm.focus();
}

function drawPreview() {
  if (!attempt) return;
  const p = attempt.preview;
  const service = p.offer.kind === "service";
  el.previewOffer.textContent = p.offer.title;
  // The offer's rules in the service's words, from the till pack (no page writes its own).
  const packed = kept && kept.pack.offers.find((offer) => offer.id === p.offer.id);
  el.previewTerms.textContent = packed ? packed.terms[language()] : "";
  el.previewTerms.hidden = !packed;
  el.previewPurchase.textContent = service && !p.purchase_amount ? "—" : formatFen(p.purchase_amount);
  // A service has no price effect: no minus line that is not taken off.
  el.previewDiscountRow.hidden = service;
  el.previewDiscount.textContent = "−" + formatFen(p.discount_amount);
  el.previewPayable.textContent = service && !p.purchase_amount ? t("full_price") : formatFen(p.payable_amount);
  el.previewService.hidden = !service;
  el.previewService.textContent = service ? t("service_counted", { value: formatFen(p.discount_amount) }) : "";
  el.previewUses.textContent = p.uses_left === null ? "—" : String(p.uses_left);
  el.previewDouble.hidden = !attempt.doubleScan;
  el.previewDouble.textContent = attempt.doubleScan
    ? t(attempt.acknowledged ? "double_scan_sure" : "double_scan", { time: formatTime(p.last_redeemed_at) })
    : "";
  el.confirm.textContent = t(
    attempt.retry ? "retry_redeem" : attempt.doubleScan && !attempt.acknowledged ? "double_scan_continue" : "confirm_redeem",
  );
}

async function confirm() {
  if (busy || !attempt) return;
  if (attempt.doubleScan && !attempt.acknowledged) {
    attempt.acknowledged = true;
    drawPreview();
    return;
  }
  busy = true;
  setBusy(true);
  const current = attempt;
  // The receipt number, typed while the preview was shown; kept for every retry (the
  // same Idempotency-Key must carry the same body).
  const reference = el.reference.value.trim();
  if (current.body.reference === undefined && reference) current.body.reference = reference;
  if (current.offline) {
    await confirmOffline(current);
    busy = false;
    setBusy(false);
    return;
  }
  const answer = await api("POST", "/v1/redemptions", {
    token: scannerKey,
    headers: { "Idempotency-Key": current.key },
    body: current.body,
  });
  busy = false;
  setBusy(false);
  if (answer.ok) {
    const r = answer.data;
    const service = current.preview.offer.kind === "service";
    showOutcome(
      "success",
      () => t("redeemed"),
      () => [
        service
          ? t("redeemed_service", { value: formatFen(r.discount_amount) })
          : t("redeemed_amounts", {
              discount: formatFen(r.discount_amount),
              payable: formatFen(r.payable_amount),
            }),
        current.preview.offer.title,
      ],
    );
    endAttempt();
    loadToday();
    return;
  }
  const code = answer.problem.code;
  if (code === "unauthenticated") return keyRefused();
  // The answer may not have arrived, or the first request is still running: keep the
  // attempt and its Idempotency-Key, so a retry cannot redeem twice.
  if (code === "network_error" || code === "idempotency_key_in_use" || answer.status >= 500) {
    current.retry = true;
    drawPreview();
    showOutcome("problem", () => problemText(answer.problem), () => [t("retry_hint")]);
    el.confirm.focus();
    return;
  }
  showProblem(answer.problem);
  endAttempt();
}

/** An offline redemption is done for the customer: it waits on this till, with its
 * Idempotency-Key and the time it was made, until the service has it. */
async function confirmOffline(current) {
  const made = new Date();
  const body = { token: current.body.token, offline_at: made.toISOString() };
  if (current.body.purchase_amount !== undefined) body.purchase_amount = current.body.purchase_amount;
  if (current.body.reference) body.reference = current.body.reference;
  try {
    await O.enqueue({
      key: current.key,
      voucher: current.offline.voucher,
      made_at: made.getTime(),
      seq: performance.now(),
      body: body,
    });
  } catch (error) {
    // The same voucher was redeemed offline here meanwhile (or storage failed).
    showProblem({ code: error && error.name === "ConstraintError" ? "voucher_used_up" : "offline_unavailable" });
    endAttempt();
    return;
  }
  const p = current.preview;
  const service = p.offer.kind === "service";
  showOutcome(
    "success",
    () => t("offline_accepted"),
    () => [
      service
        ? t("redeemed_service", { value: formatFen(p.discount_amount) })
        : t("redeemed_amounts", { discount: formatFen(p.discount_amount), payable: formatFen(p.payable_amount) }),
      p.offer.title,
    ],
    () => t("offline_accepted_note"),
  );
  endAttempt();
  await countWaiting();
}

/** After any result, refusal or cancel: nothing carries over to the next customer. */
function endAttempt() {
  attempt = null;
  el.preview.hidden = true;
  el.code.value = "";
  el.amount.value = "";
  el.reference.value = "";
  el.code.focus();
}

function cancelPreview() {
  endAttempt();
  clearOutcome();
}

function clearAll() {
  endAttempt();
  clearOutcome();
}

function setBusy(on) {
  document.body.classList.toggle("busy", on);
  for (const button of [el.confirm, el.cancel, ...el.todayList.querySelectorAll("button")]) button.disabled = on;
}

// ----- this till's redemptions of today: reverse any of them -----

async function loadToday() {
  const answer = await api("GET", "/v1/till/redemptions?limit=50", { token: scannerKey });
  if (!answer.ok) return;
  today = answer.data.items;
  drawToday();
}

function drawToday() {
  el.today.hidden = today.length === 0;
  el.todayList.replaceChildren(
    ...today.map((r) => {
      const item = document.createElement("li");
      // Entries are told apart by the second and the receipt number.
      const text = document.createElement("span");
      text.className = "today-text";
      text.textContent = t("today_line", {
        time: formatTime(r.created_at, true),
        title: r.offer_title,
        purchase: r.offer_kind === "service" && !r.purchase_amount ? "—" : formatFen(r.purchase_amount),
        discount: formatFen(r.discount_amount),
      });
      if (r.reference) text.textContent += " · " + t("today_reference", { reference: r.reference });
      item.append(text);
      if (r.status === "reversed") {
        const done = document.createElement("span");
        done.className = "status";
        done.textContent = t("status_reversed");
        item.append(done);
      } else {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = t("reverse_this");
        b.addEventListener("click", () => startReverse(r));
        item.append(b);
      }
      return item;
    }),
  );
}

function startReverse(redemption) {
  if (attempt) return;
  reversing = redemption;
  el.reverseForm.hidden = false;
  el.reverseQuestion.textContent = t("reverse_question_one", {
    time: formatTime(redemption.created_at, true),
    discount: formatFen(redemption.discount_amount),
  });
  el.reverseReason.value = "";
  el.reverseReason.focus();
}

function cancelReverse() {
  reversing = null;
  el.reverseForm.hidden = true;
  el.code.focus();
}

async function confirmReverse(event) {
  event.preventDefault();
  if (busy || !reversing) return;
  busy = true;
  setBusy(true);
  const answer = await api("POST", "/v1/redemptions/" + encodeURIComponent(reversing.id) + "/reversal", {
    token: scannerKey,
    body: { reason: el.reverseReason.value.trim() },
  });
  busy = false;
  setBusy(false);
  if (!answer.ok && answer.problem.code === "unauthenticated") return keyRefused();
  if (!answer.ok && answer.problem.code === "network_error") {
    showOutcome("problem", () => problemText(answer.problem), () => [t("retry_hint")]);
    el.reverseReason.focus();
    return;
  }
  if (answer.ok) {
    const amount = answer.data.discount_amount;
    showOutcome("success", () => t("reversed"), () => [t("reversed_amount", { discount: formatFen(amount) })]);
  } else {
    showProblem(answer.problem);
  }
  cancelReverse();
  loadToday();
}

// ----- offline: the till pack, the redemptions waiting, the worker -----

let loading = null;

/** The offline check and pricing (voucher-check.js, pricing.js): not part of the first
 * load; imported when the network goes, from the worker's cache if need be. */
function offlineScripts() {
  if (!loading) {
    loading = Promise.all([import("./voucher-check.js"), import("./pricing.js")]).catch(function (error) {
      loading = null;
      throw error;
    });
  }
  return loading;
}

function noteNetwork(answer) {
  const was = unreachable;
  unreachable = !answer.ok && answer.problem.code === "network_error";
  if (unreachable) offlineScripts().catch(() => {});
  if (was !== unreachable) drawOfflineState();
}

/** GET /v1/till/pack while online, kept for the day the network is gone. */
async function refreshPack() {
  if (!scannerKey || !navigator.onLine) return;
  const key = scannerKey;
  const answer = await api("GET", "/v1/till/pack", { token: key });
  noteNetwork(answer);
  if (!answer.ok || key !== scannerKey) return;
  const fetched = Date.now();
  kept = { pack: answer.data, fetched_at: fetched };
  await O.savePack(answer.data, fetched);
  await O.forgetSentBefore(fetched);
  drawOfflineState();
}

/** Send the waiting redemptions, oldest first. One the service has answered for good
 * (2xx, or a refusal that will never change) no longer waits; on a network failure, a
 * 5xx or a wait-and-retry answer the rest stay, in order, for the next try. */
async function sendQueued() {
  if (sending || !scannerKey || !navigator.onLine) return;
  sending = true;
  let sent = 0;
  try {
    for (const entry of await O.queued()) {
      const answer = await api("POST", "/v1/redemptions", {
        token: scannerKey,
        headers: { "Idempotency-Key": entry.key },
        body: entry.body,
      });
      noteNetwork(answer);
      if (!answer.ok && !answeredForGood(answer)) break;
      await O.forget(entry, Date.now());
      sent += 1;
    }
  } finally {
    sending = false;
  }
  await countWaiting();
  if (sent) loadToday();
}

const TRY_AGAIN = ["network_error", "idempotency_key_in_use", "unauthenticated", "too_many_attempts", "not_ready", "database_unavailable"];

function answeredForGood(answer) {
  return answer.status >= 400 && answer.status < 500 && ![408, 429].includes(answer.status) && !TRY_AGAIN.includes(answer.problem.code);
}

async function countWaiting() {
  waiting = (await O.queued()).length;
  drawOfflineState();
}

function packAge() {
  const minutes = Math.floor((Date.now() - kept.fetched_at) / 60000);
  if (minutes < 1) return t("pack_age_now");
  if (minutes < 120) return t("pack_age_minutes", { n: minutes });
  return t("pack_age_hours", { n: Math.floor(minutes / 60) });
}

function drawOfflineState() {
  const offline = unreachable || !navigator.onLine;
  say(el.networkState, offline ? t(offlineCapable ? "offline_mode" : "offline_mode_unavailable") : "", offline ? "offline" : "");
  say(el.waiting, waiting ? t("offline_waiting", { n: waiting }) : "");
  say(
    el.packAge,
    kept ? (O.fresh(kept.pack, Date.now()) ? packAge() : t("pack_stale")) : "",
  );
}

async function startOffline() {
  offlineCapable = await O.supported();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/scan-worker.js", { scope: "/scan" }).catch(() => {});
  }
  kept = (await O.storedPack().catch(() => undefined)) || null;
  await countWaiting().catch(() => {});
  window.addEventListener("online", function () {
    unreachable = false;
    drawOfflineState();
    sendQueued();
    refreshPack();
  });
  window.addEventListener("offline", function () {
    drawOfflineState();
    offlineScripts().catch(() => {});
  });
  setInterval(refreshPack, PACK_EVERY_MS);
  setInterval(sendQueued, SEND_EVERY_MS);
  setInterval(drawOfflineState, 30 * 1000);
}

// ----- keyboard -----

el.code.addEventListener("keydown", function (event) {
  if (event.key === "Enter") {
    event.preventDefault();
    onCodeEnter();
  }
});
el.amount.addEventListener("keydown", function (event) {
  if (event.key === "Enter") {
    event.preventDefault();
    preview();
  }
});
el.reference.addEventListener("keydown", function (event) {
  if (event.key === "Enter") {
    event.preventDefault();
    if (attempt) confirm();
    else preview();
  }
});
el.scanForm.addEventListener("submit", function (event) {
  event.preventDefault();
  preview();
});
el.confirm.addEventListener("click", confirm);
el.cancel.addEventListener("click", cancelPreview);
el.clear.addEventListener("click", clearAll);
el.keyForm.addEventListener("submit", saveKey);
el.keyCancel.addEventListener("click", showTill);
el.changeKey.addEventListener("click", showKeySetup);
el.reverseForm.addEventListener("submit", confirmReverse);
el.reverseCancel.addEventListener("click", cancelReverse);

document.addEventListener("keydown", function (event) {
  if (event.key === "Escape") {
    if (mode() === "preview") cancelPreview();
    else if (mode() === "reverse") cancelReverse();
    else if (mode() === "scan") clearAll();
    else if (scannerKey) showTill(); // leave "change key" without changing it
    return;
  }
  const typing = event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey;
  const inField = event.target instanceof HTMLInputElement;
  if (typing && !inField && event.key !== " " && mode() !== "key") {
    // A new scan arrives while a button has the focus: it goes to the code input
    // (moving the focus during keydown sends the character there).
    if (mode() === "preview") cancelPreview();
    if (mode() === "reverse") cancelReverse();
    el.code.focus();
  }
});

// The focus never stays on nothing (a click on the page background, a closed panel).
document.addEventListener("focusout", function () {
  setTimeout(function () {
    if (!document.activeElement || document.activeElement === document.body) refocus();
  }, 0);
});
window.addEventListener("focus", refocus);

onLanguageChange(function () {
  drawPreview();
  drawOutcome();
  drawToday();
  drawIdentity();
  drawOfflineState();
});

start()
  .then(startOffline)
  .then(function () {
    if (scannerKey) showTill();
    else showKeySetup();
  });
