/* Signing in (email, password, then the TOTP code when the account has one), enrolling
 * a second factor (the otpauth URI as a QR drawn by the service), and setting a password
 * from an invitation link (/console/setup?token=…).
 */

import { api } from "./api.js";
import { clearErrors, field, formProblem, h, say, showProblem, value, viewFrame } from "./dom.js";
import { problemText, t } from "./i18n.js";
import { href } from "./router.js";
import { remember } from "./session.js";

/** The sign-in form; `done()` runs once signed in. */
export function signInView(done) {
  const totp = field({ name: "totp_code", label: t("totp_code"), attrs: { inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6 }, hint: t("totp_code_hint") });
  totp.hidden = true;
  const form = h(
    "form",
    { class: "panel narrow", id: "sign-in", novalidate: true },
    field({ name: "email", label: t("email"), type: "email", required: true, attrs: { autocomplete: "username", spellcheck: "false" } }),
    field({ name: "password", label: t("password"), type: "password", required: true, attrs: { autocomplete: "current-password" } }),
    totp,
    formProblem(),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("sign_in")))
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = { email: value(form, "email"), password: form.elements.namedItem("password").value };
    if (!totp.hidden) body.totp_code = value(form, "totp_code");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const answer = await api("POST", "/v1/staff-sessions", { body: body, quiet: true });
    button.disabled = false;
    if (answer.ok) {
      remember(answer.data);
      done(answer.data);
      return;
    }
    if (answer.problem.code === "totp_required") {
      const first = totp.hidden;
      totp.hidden = false;
      if (first) {
        say(form.querySelector(".form-problem"), t("totp_step"), "warn");
        form.elements.namedItem("totp_code").focus();
        return;
      }
    }
    showProblem(form, answer.problem);
  });
  return [h("h1", { id: "view-title", tabindex: "-1" }, t("sign_in_title")), form];
}

/** Enrol a TOTP second factor: ask for a secret, show its QR and text, confirm a code. */
export function enrolView(done, required) {
  const area = h("div", { class: "panel narrow" });
  const start = h("button", { type: "button", class: "primary" }, t("totp_start"));
  const problem = formProblem();
  area.append(h("p", {}, required ? t("totp_required_text") : t("totp_optional_text")), problem, h("div", { class: "actions" }, start));
  start.addEventListener("click", async () => {
    start.disabled = true;
    const answer = await api("POST", "/v1/staff/me/totp");
    start.disabled = false;
    if (!answer.ok) {
      say(problem, problemText(answer.problem), "problem");
      return;
    }
    area.replaceChildren(enrolForm(answer.data, done));
  });
  return viewFrame("totp_title", area);
}

function enrolForm(enrolment, done) {
  const form = h(
    "form",
    { novalidate: true, id: "totp-confirm" },
    h("p", {}, t("totp_scan")),
    h("img", { class: "qr", src: "/v1/staff/me/totp/qr.svg", alt: t("totp_qr_alt"), width: 200, height: 200 }),
    h("p", {}, t("totp_secret_text"), " ", h("code", { id: "totp-secret" }, enrolment.secret)),
    field({ name: "code", label: t("totp_code"), attrs: { inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6 } }),
    formProblem(),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("totp_confirm")))
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const answer = await api("POST", "/v1/staff/me/totp/confirm", { body: { code: value(form, "code") } });
    if (!answer.ok) {
      showProblem(form, answer.problem);
      return;
    }
    form.replaceChildren(h("p", { class: "ok", role: "status" }, t("totp_enabled")));
    done();
  });
  return form;
}

/** Set a password from an invitation: /console/setup?token=… */
export function setupView(token) {
  if (!token) return viewFrame("setup_title", h("p", { class: "problem", role: "alert" }, t("setup_no_token")));
  const form = h(
    "form",
    { class: "panel narrow", id: "setup", novalidate: true },
    h("p", { class: "hint" }, t("setup_text")),
    field({ name: "password", label: t("new_password"), type: "password", required: true, attrs: { autocomplete: "new-password", minlength: 12 }, hint: t("password_hint") }),
    field({ name: "password_again", label: t("password_again"), type: "password", required: true, attrs: { autocomplete: "new-password" } }),
    formProblem(),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("setup_save")))
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const password = form.elements.namedItem("password").value;
    if (password.length < 12) {
      showProblem(form, { code: "validation_error", errors: [{ field: "password", message: t("password_short") }] });
      return;
    }
    if (password !== form.elements.namedItem("password_again").value) {
      showProblem(form, { code: "validation_error", errors: [{ field: "password_again", message: t("password_mismatch") }] });
      return;
    }
    const answer = await api("POST", "/v1/staff/setup", { body: { setup_token: token, password: password }, quiet: true });
    if (!answer.ok) {
      showProblem(form, answer.problem);
      return;
    }
    form.replaceChildren(
      h("p", { class: "ok", role: "status" }, t("setup_done")),
      h("p", {}, h("a", { href: href(""), "data-nav": true }, t("go_sign_in")))
    );
  });
  return viewFrame("setup_title", form);
}
