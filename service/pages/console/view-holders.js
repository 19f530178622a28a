/* Holders (bureau_admin only): search, enrol, suspend, revoke; CSV import with the line
 * errors as a table, and a progress bar fed by GET /v1/holder-imports/{id} while the job
 * runs (docs/api.md). A synchronous answer (200 with created/updated) is taken as done.
 */

import { api } from "./api.js";
import { clearErrors, field, formProblem, h, say, showProblem, table, value, viewFrame } from "./dom.js";
import { problemText, t } from "./i18n.js";
import { HOLDER_CATEGORIES, holderCategory, options, status } from "./labels.js";
import { filters, listQuery, pager } from "./lists.js";
import { nextStatuses, statuses } from "./model.js";
import { go, href } from "./router.js";

const POLL_MS = 500;

export async function render(context) {
  const { route } = context;
  if (route.id === "new") return enrolPage();
  if (route.id === "import") return importPage();
  if (route.id) return detail(context);
  return list(context);
}

async function list(context) {
  const { route } = context;
  const answer = await api("GET", "/v1/holders", { query: listQuery(route, ["q", "category", "status", "region"]) });
  const filterForm = filters(route, [
    field({ name: "q", label: t("search_holder"), type: "search" }),
    field({ name: "category", label: t("category"), type: "select", options: options(HOLDER_CATEGORIES, holderCategory, "any") }),
    field({ name: "status", label: t("status"), type: "select", options: options(statuses("holder"), status, "any") }),
  ]);
  const actions = h("p", { class: "actions" },
    h("a", { class: "button primary", href: href("holders", "new"), "data-nav": true }, t("holder_enrol")),
    h("a", { class: "button", href: href("holders", "import"), "data-nav": true }, t("holder_import")));
  if (!answer.ok) return viewFrame("nav_holders", actions, filterForm, h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const rows = table(
    [
      { label: t("card_number"), cell: (x) => h("a", { href: href("holders", x.id), "data-nav": true }, x.card_number) },
      { label: t("display_name"), cell: (x) => x.display_name },
      { label: t("category"), cell: (x) => holderCategory(x.category) },
      { label: t("region"), cell: (x) => x.region || "—" },
      { label: t("valid_until"), cell: (x) => x.valid_until },
      { label: t("status"), cell: (x) => h("span", { class: "status status-" + x.status }, status(x.status)) },
    ],
    answer.data.items,
    t("nav_holders")
  );
  return viewFrame("nav_holders", actions, filterForm, rows, pager(route, answer.data.next_cursor));
}

function enrolPage() {
  const form = h("form", { class: "panel", id: "holder-form", novalidate: true },
    field({ name: "card_number", label: t("card_number"), required: true, attrs: { maxlength: 32, autocomplete: "off", spellcheck: "false" }, hint: t("card_number_hint") }),
    field({ name: "display_name", label: t("display_name"), required: true, attrs: { maxlength: 100 } }),
    field({ name: "category", label: t("category"), type: "select", options: options(HOLDER_CATEGORIES, holderCategory) }),
    field({ name: "region", label: t("region"), attrs: { maxlength: 100 } }),
    field({ name: "valid_until", label: t("valid_until"), type: "date", required: true, hint: t("valid_until_hint") }),
    field({ name: "pin", label: t("pin"), type: "password", required: true, attrs: { inputmode: "numeric", autocomplete: "new-password", maxlength: 12 }, hint: t("pin_hint") }),
    formProblem(),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("holder_enrol"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {};
    for (const name of ["card_number", "display_name", "category", "region", "valid_until", "pin"]) body[name] = value(form, name);
    const errors = [];
    for (const name of ["card_number", "display_name", "valid_until", "pin"]) if (!body[name]) errors.push({ field: name, message: t("required") });
    if (body.pin && !/^\d{6,12}$/.test(body.pin)) errors.push({ field: "pin", message: t("pin_hint") });
    if (errors.length) return showProblem(form, { code: "validation_error", errors: errors });
    const answer = await api("POST", "/v1/holders", { body: body });
    if (!answer.ok) return showProblem(form, answer.problem);
    go(href("holders", answer.data.id));
  });
  return viewFrame("holder_enrol", h("p", {}, h("a", { href: href("holders"), "data-nav": true }, t("back_to_list"))), form);
}

async function detail(context) {
  const { route } = context;
  const answer = await api("GET", "/v1/holders/" + encodeURIComponent(route.id));
  if (!answer.ok) return viewFrame("nav_holders", h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const holder = answer.data;
  const message = h("p", { class: "form-problem", role: "alert", tabindex: "-1", hidden: true });
  const actions = nextStatuses("holder", holder.status).map((next) =>
    h("button", { type: "button", class: next === "revoked" ? "danger" : "primary", onclick: async () => {
      if (next === "revoked" && !window.confirm(t("confirm_revoke_holder"))) return;
      const changed = await api("PATCH", "/v1/holders/" + encodeURIComponent(holder.id), { body: { status: next } });
      if (!changed.ok) return say(message, problemText(changed.problem), "problem");
      context.rerender();
    } }, t("holder_to_" + next)));
  return [
    h("p", {}, h("a", { href: href("holders"), "data-nav": true }, t("back_to_list"))),
    h("h1", { id: "view-title", tabindex: "-1" }, holder.display_name),
    h("dl", { class: "facts" },
      h("dt", {}, t("card_number")), h("dd", {}, holder.card_number),
      h("dt", {}, t("category")), h("dd", {}, holderCategory(holder.category)),
      h("dt", {}, t("region")), h("dd", {}, holder.region || "—"),
      h("dt", {}, t("valid_until")), h("dd", {}, holder.valid_until),
      h("dt", {}, t("status")), h("dd", {}, h("span", { class: "status status-" + holder.status, id: "holder-status" }, status(holder.status)))),
    message,
    actions.length ? h("div", { class: "actions" }, actions) : null,
    holder.status === "revoked" ? null : h("p", { class: "hint" }, t("revoke_holder_hint")),
    holder.status === "revoked" ? null : editForm(holder, context),
    holder.status === "revoked" ? null : pinForm(holder),
  ];
}

/** Correct the name and region, renew the card (a new valid_until): PATCH what changed. */
function editForm(holder, context) {
  const form = h("form", { class: "panel", id: "holder-edit-form", novalidate: true },
    h("h2", {}, t("holder_edit")),
    h("p", { class: "hint" }, t("holder_edit_hint")),
    h("div", { class: "row" },
      field({ name: "display_name", label: t("display_name"), value: holder.display_name, required: true, attrs: { maxlength: 100 } }),
      field({ name: "region", label: t("region"), value: holder.region, attrs: { maxlength: 100 } }),
      field({ name: "valid_until", label: t("valid_until"), type: "date", value: holder.valid_until, required: true, hint: t("valid_until_hint") })),
    formProblem(),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("save"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {};
    for (const name of ["display_name", "region", "valid_until"]) {
      if (value(form, name) !== (holder[name] || "")) body[name] = value(form, name);
    }
    const errors = ["display_name", "valid_until"].filter((name) => !value(form, name)).map((name) => ({ field: name, message: t("required") }));
    if (errors.length) return showProblem(form, { code: "validation_error", errors: errors });
    const answer = Object.keys(body).length
      ? await api("PATCH", "/v1/holders/" + encodeURIComponent(holder.id), { body: body })
      : { ok: true };
    if (!answer.ok) return showProblem(form, answer.problem);
    await context.rerender();
    const saved = document.getElementById("holder-edit-form");
    if (saved) say(saved.querySelector(".form-problem"), t("holder_saved"), "ok");
  });
  return form;
}

/** A new PIN: the holder signs in with it at once, and a lockout is lifted (the server's rule). */
function pinForm(holder) {
  const form = h("form", { class: "panel", id: "pin-reset-form", novalidate: true },
    h("h2", {}, t("pin_reset")),
    field({ name: "pin", label: t("pin_new"), type: "password", required: true, attrs: { inputmode: "numeric", autocomplete: "new-password", maxlength: 12 }, hint: t("pin_reset_hint") }),
    formProblem(),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("pin_reset"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const pin = value(form, "pin");
    if (!pin) return showProblem(form, { code: "validation_error", errors: [{ field: "pin", message: t("required") }] });
    const answer = await api("PATCH", "/v1/holders/" + encodeURIComponent(holder.id), { body: { pin: pin } });
    if (!answer.ok) return showProblem(form, answer.problem);
    form.elements.namedItem("pin").value = "";
    say(form.querySelector(".form-problem"), t("pin_reset_done"), "ok");
  });
  return form;
}

function importPage() {
  const input = h("input", { id: "csv-file", type: "file", accept: ".csv,text/csv", "aria-describedby": "csv-hint" });
  const form = h("form", { class: "panel", id: "import-form", novalidate: true },
    h("div", { class: "field", dataset: { field: "file" } }, h("label", { for: "csv-file" }, t("csv_file")), input,
      h("p", { class: "hint", id: "csv-hint" }, t("csv_hint")), h("p", { class: "field-error", hidden: true })),
    formProblem(),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("import_start"))));
  const outcome = h("div", { id: "import-outcome", "aria-live": "polite" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    outcome.replaceChildren();
    const file = input.files && input.files[0];
    if (!file) return showProblem(form, { code: "validation_error", errors: [{ field: "file", message: t("csv_choose") }] });
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    // The file as it is: decoding it here would turn a GBK file into U+FFFD and store
    // that; the server refuses a file that is not UTF-8 with its advice (docs/staff.md).
    const answer = await api("POST", "/v1/holders/import", { raw: file, contentType: "text/csv" });
    if (!answer.ok) {
      button.disabled = false;
      if (Array.isArray(answer.problem.errors) && answer.problem.errors.some((e) => e.line !== undefined)) {
        return outcome.replaceChildren(lineErrors(answer.problem));
      }
      return showProblem(form, answer.problem);
    }
    if (answer.status === 202 && answer.data && answer.data.id) {
      await follow(answer.data, outcome);
    } else {
      outcome.replaceChildren(done(answer.data));
    }
    button.disabled = false;
  });
  return viewFrame("holder_import", h("p", {}, h("a", { href: href("holders"), "data-nav": true }, t("back_to_list"))), form, outcome);
}

function lineErrors(problem) {
  const count = problem.error_count || problem.errors.length;
  return h("section", { class: "panel", "aria-labelledby": "line-errors" },
    h("h2", { id: "line-errors", class: "problem" }, t("import_refused", { count: count })),
    h("p", {}, t("import_nothing_written")),
    table([
      { label: t("line"), cell: (e) => e.line, num: true },
      { label: t("column"), cell: (e) => e.field || "—" },
      { label: t("error"), cell: (e) => e.message },
    ], problem.errors, t("import_refused", { count: count })));
}

function done(job) {
  return h("p", { class: "ok", role: "status", id: "import-done" }, t("import_done", { created: job.created, updated: job.updated }));
}

/** Poll the job until it is completed or failed, drawing its progress. */
async function follow(job, outcome) {
  const bar = h("progress", { id: "import-progress", max: Math.max(1, job.rows || 1), value: job.done || 0, "aria-label": t("import_progress") });
  const line = h("p", { id: "import-progress-text" });
  outcome.replaceChildren(h("div", { class: "panel" }, h("label", { for: "import-progress" }, t("import_progress")), bar, line));
  let current = job;
  for (;;) {
    bar.max = Math.max(1, current.rows || 1);
    bar.value = current.done || 0;
    line.textContent = t("import_progress_text", { done: current.done || 0, rows: current.rows || 0 });
    if (current.status === "completed") return outcome.append(done(current));
    if (current.status === "failed") return outcome.append(h("p", { class: "problem", role: "alert" }, t("import_failed", { detail: current.detail || "" })));
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (!outcome.isConnected) return; // the view was left: stop asking
    const answer = await api("GET", "/v1/holder-imports/" + encodeURIComponent(current.id));
    if (!answer.ok) return outcome.append(h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
    current = answer.data;
  }
}
