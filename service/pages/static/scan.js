/* /scan — the till. A USB scanner types the voucher code and presses Enter; the code
 * input keeps the focus so that lands there. Enter moves on: code → amount → preview →
 * confirm. Escape cancels. Everything works without a mouse.
 */
"use strict";

(function () {
  const Y = window.Youdai;
  const KEY_STORE = "youdai.scanner_key";
  const LAST_STORE = "youdai.scan.last";
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
    clear: $("clear-button"),
    preview: $("preview"),
    previewOffer: $("preview-offer"),
    previewPurchase: $("preview-purchase"),
    previewDiscount: $("preview-discount"),
    previewPayable: $("preview-payable"),
    previewUses: $("preview-uses"),
    confirm: $("confirm"),
    cancel: $("cancel"),
    outcome: $("outcome"),
    last: $("last"),
    lastSummary: $("last-summary"),
    reverseLast: $("reverse-last"),
    reverseForm: $("reverse-form"),
    reverseReason: $("reverse-reason"),
    reverseCancel: $("reverse-cancel"),
  };

  let scannerKey = localStorage.getItem(KEY_STORE) || "";
  /** The redemption being decided: {key, token, fen, preview}. Its Idempotency-Key is
   * made once, when the preview succeeds, and sent again on every retry of it. */
  let attempt = null;
  let busy = false;
  let outcome = null; // {kind, title, lines, note}: functions of the language, redrawn on a change

  function readLast() {
    try {
      return JSON.parse(localStorage.getItem(LAST_STORE) || "null");
    } catch (error) {
      return null;
    }
  }

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
    if (!outcome) return;
    el.outcome.dataset.kind = outcome.kind;
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

  function showProblem(problem) {
    const code = problem.code;
    showOutcome(
      "problem",
      () => Y.problemText(problem),
      null,
      () => Y.t("problem_code", { code: code }),
    );
  }

  // ----- the scanner key -----

  function showKeySetup() {
    el.keySetup.hidden = false;
    el.till.hidden = true;
    el.changeKey.hidden = true;
    el.keyCancel.hidden = !scannerKey;
    el.keyInput.value = "";
    Y.say(el.keyProblem, "");
    el.keyInput.focus();
  }

  function showTill() {
    el.keySetup.hidden = true;
    el.till.hidden = false;
    el.changeKey.hidden = false;
    drawLast();
    refocus();
  }

  async function saveKey(event) {
    event.preventDefault();
    const candidate = el.keyInput.value.trim();
    if (!candidate) {
      Y.say(el.keyProblem, Y.t("key_required"), "problem");
      return;
    }
    if (!/^[\x21-\x7e]+$/.test(candidate)) {
      Y.say(el.keyProblem, Y.t("key_rejected"), "problem");
      return;
    }
    if (busy) return;
    busy = true;
    // An empty preview proves the key without touching any voucher: a live scanner key
    // passes authentication and only then is refused for the missing fields.
    const answer = await Y.api("POST", "/v1/redemptions/preview", { token: candidate, body: {} });
    busy = false;
    if (answer.status === 422 && answer.problem.code === "validation_error") {
      // The last redemption was made under the old key, maybe at another partner: forget it.
      if (candidate !== scannerKey) localStorage.removeItem(LAST_STORE);
      scannerKey = candidate;
      localStorage.setItem(KEY_STORE, scannerKey);
      clearOutcome();
      showTill();
      return;
    }
    const text =
      answer.problem.code === "unauthenticated"
        ? Y.t("key_rejected")
        : answer.problem.code === "forbidden"
          ? Y.t("key_not_scanner")
          : Y.problemText(answer.problem);
    Y.say(el.keyProblem, text, "problem");
    el.keyInput.select();
  }

  function keyRefused() {
    showKeySetup();
    Y.say(el.keyProblem, Y.t("key_rejected"), "problem");
  }

  // ----- scan, preview, confirm -----

  /** A scanner that typed the code into the amount field: "128eyJhbGci…" → amount + code. */
  function splitMisplacedCode() {
    const match = /^([\d.\uFF10-\uFF19\uFF0E\u3002]*)([A-Za-z][\w\-.]{19,})$/.exec(el.amount.value.trim());
    if (!match) return;
    el.amount.value = match[1];
    el.code.value = match[2];
  }

  function onCodeEnter() {
    if (!el.code.value.trim()) return;
    if (el.amount.value.trim()) {
      preview();
    } else {
      el.amount.focus();
    }
  }

  async function preview() {
    if (busy) return;
    splitMisplacedCode();
    const token = el.code.value.trim();
    if (!token) {
      showOutcome("problem", () => Y.t("code_required"));
      el.code.focus();
      return;
    }
    const amount = Y.parseYuan(el.amount.value);
    if (amount.error) {
      const key = amount.error;
      showOutcome("problem", () => Y.t(key));
      el.amount.focus();
      el.amount.select();
      return;
    }
    busy = true;
    setBusy(true);
    clearOutcome();
    const answer = await Y.api("POST", "/v1/redemptions/preview", {
      token: scannerKey,
      body: { token: token, purchase_amount: amount.fen },
    });
    busy = false;
    setBusy(false);
    if (!answer.ok) {
      if (answer.problem.code === "unauthenticated") return keyRefused();
      showProblem(answer.problem);
      // Scan again at once: the amount stays, so the next code + Enter previews directly.
      el.code.value = "";
      el.code.focus();
      return;
    }
    attempt = { key: Y.newId(), token: token, fen: amount.fen, preview: answer.data };
    drawPreview();
    el.preview.hidden = false;
    el.confirm.focus();
  }

  function drawPreview() {
    if (!attempt) return;
    const p = attempt.preview;
    el.previewOffer.textContent = p.offer.title;
    el.previewPurchase.textContent = Y.formatFen(p.purchase_amount);
    el.previewDiscount.textContent = "−" + Y.formatFen(p.discount_amount);
    el.previewPayable.textContent = Y.formatFen(p.payable_amount);
    el.previewUses.textContent = String(p.uses_left);
    el.confirm.textContent = Y.t(attempt.retry ? "retry_redeem" : "confirm_redeem");
  }

  async function confirm() {
    if (busy || !attempt) return;
    busy = true;
    setBusy(true);
    const current = attempt;
    const answer = await Y.api("POST", "/v1/redemptions", {
      token: scannerKey,
      headers: { "Idempotency-Key": current.key },
      body: { token: current.token, purchase_amount: current.fen },
    });
    busy = false;
    setBusy(false);
    if (answer.ok) {
      const r = answer.data;
      localStorage.setItem(
        LAST_STORE,
        JSON.stringify({
          id: r.id,
          purchase_amount: r.purchase_amount,
          discount_amount: r.discount_amount,
          payable_amount: r.payable_amount,
          offer_title: current.preview.offer.title,
          created_at: r.created_at,
        }),
      );
      showOutcome(
        "success",
        () => Y.t("redeemed"),
        () => [
          Y.t("redeemed_amounts", {
            discount: Y.formatFen(r.discount_amount),
            payable: Y.formatFen(r.payable_amount),
          }),
          current.preview.offer.title,
        ],
      );
      endAttempt(true);
      drawLast();
      return;
    }
    const code = answer.problem.code;
    if (code === "unauthenticated") return keyRefused();
    // The answer may not have arrived, or the first request is still running: keep the
    // attempt and its Idempotency-Key, so a retry cannot redeem twice.
    if (code === "network_error" || code === "idempotency_key_in_use" || answer.status >= 500) {
      current.retry = true;
      drawPreview();
      showOutcome("problem", () => Y.problemText(answer.problem), () => [Y.t("retry_hint")]);
      el.confirm.focus();
      return;
    }
    showProblem(answer.problem);
    endAttempt(false);
  }

  function endAttempt(clearAmount) {
    attempt = null;
    el.preview.hidden = true;
    el.code.value = "";
    if (clearAmount) el.amount.value = "";
    el.code.focus();
  }

  function cancelPreview() {
    endAttempt(false);
    clearOutcome();
  }

  function clearAll() {
    endAttempt(true);
    clearOutcome();
  }

  function setBusy(on) {
    document.body.classList.toggle("busy", on);
    for (const button of [el.confirm, el.cancel, el.reverseLast]) button.disabled = on;
  }

  // ----- reverse the last redemption -----

  function drawLast() {
    const last = readLast();
    el.last.hidden = !last;
    if (!last) return;
    el.lastSummary.textContent = Y.t("last_summary", {
      purchase: Y.formatFen(last.purchase_amount),
      discount: Y.formatFen(last.discount_amount),
      title: last.offer_title,
    });
  }

  function startReverse() {
    if (!readLast() || attempt) return;
    el.reverseForm.hidden = false;
    el.reverseLast.hidden = true;
    el.reverseReason.value = "";
    el.reverseReason.focus();
  }

  function cancelReverse() {
    el.reverseForm.hidden = true;
    el.reverseLast.hidden = false;
    el.code.focus();
  }

  async function confirmReverse(event) {
    event.preventDefault();
    const last = readLast();
    if (busy || !last) return;
    busy = true;
    setBusy(true);
    const answer = await Y.api("POST", "/v1/redemptions/" + encodeURIComponent(last.id) + "/reversal", {
      token: scannerKey,
      body: { reason: el.reverseReason.value.trim() },
    });
    busy = false;
    setBusy(false);
    if (!answer.ok && answer.problem.code === "unauthenticated") return keyRefused();
    if (!answer.ok && answer.problem.code === "network_error") {
      showOutcome("problem", () => Y.problemText(answer.problem), () => [Y.t("retry_hint")]);
      el.reverseReason.focus();
      return;
    }
    if (answer.ok) {
      const amount = answer.data.discount_amount;
      showOutcome("success", () => Y.t("reversed"), () => [Y.t("reversed_amount", { discount: Y.formatFen(amount) })]);
    } else {
      showProblem(answer.problem);
    }
    // Reversed, already reversed or too old: either way there is nothing left to reverse.
    localStorage.removeItem(LAST_STORE);
    cancelReverse();
    drawLast();
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
  el.reverseLast.addEventListener("click", startReverse);
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

  Y.onLanguageChange(function () {
    drawPreview();
    drawOutcome();
    drawLast();
  });

  Y.start().then(function () {
    if (scannerKey) showTill();
    else showKeySetup();
  });
})();
