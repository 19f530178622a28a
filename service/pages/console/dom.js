/* Building the page from elements, never from HTML strings (nothing typed by anyone
 * is ever parsed as markup), and the shared pieces of every view: fields with their
 * error beside them, tables, status messages, pagination.
 */

import { t, problemText } from "./i18n.js";

/** h("p", {class: "hint"}, "text", child, …): an element; attributes starting with "on" are listeners. */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let fieldCounter = 0;

/**
 * A labelled field: {name, label, type, value, hint, options, required, attrs}; the input
 * gets id `f-<name>` (or a unique one), its error slot sits right under it.
 */
export function field(spec) {
  const id = "f-" + spec.name + (spec.unique ? "-" + (fieldCounter += 1) : "");
  const describedBy = [id + "-error"];
  let control;
  if (spec.type === "select") {
    control = h(
      "select",
      { id: id, name: spec.name },
      spec.options.map((option) =>
        h("option", { value: option.value, selected: String(option.value) === String(spec.value ?? "") }, option.label)
      )
    );
  } else if (spec.type === "textarea") {
    control = h("textarea", { id: id, name: spec.name, rows: 3 }, spec.value ?? "");
  } else {
    control = h("input", Object.assign({ id: id, name: spec.name, type: spec.type || "text" }, spec.attrs || {}));
    if (spec.value !== undefined && spec.value !== null) control.value = spec.value;
  }
  if (spec.required) control.setAttribute("aria-required", "true");
  const hint = spec.hint ? h("p", { class: "hint", id: id + "-hint" }, spec.hint) : null;
  if (hint) describedBy.push(id + "-hint");
  control.setAttribute("aria-describedby", describedBy.join(" "));
  return h(
    "div",
    { class: "field", dataset: { field: spec.name } },
    h("label", { for: id }, spec.label),
    control,
    hint,
    h("p", { class: "field-error", id: id + "-error", hidden: true })
  );
}

/** A group of checkboxes: {name, legend, options, values}. */
export function checkboxes(spec) {
  const chosen = new Set(spec.values || []);
  return h(
    "fieldset",
    { class: "field checks", dataset: { field: spec.name } },
    h("legend", {}, spec.legend),
    spec.options.map((option) =>
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", name: spec.name, value: option.value, checked: chosen.has(option.value) }),
        " ",
        option.label
      )
    ),
    spec.hint ? h("p", { class: "hint" }, spec.hint) : null,
    h("p", { class: "field-error", hidden: true })
  );
}

export function checkedValues(form, name) {
  return Array.from(form.querySelectorAll(`input[name="${name}"]:checked`), (input) => input.value);
}

export function value(form, name) {
  const control = form.elements.namedItem(name);
  return control ? control.value.trim() : "";
}

/** Clear every field error and the form's message. */
export function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field-error")) {
    slot.textContent = "";
    slot.hidden = true;
  }
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
  const message = form.querySelector(".form-problem");
  if (message) say(message, "");
}

/** Put one error text beside the field `name`; true when the form has that field. */
export function fieldError(form, name, text) {
  const box = form.querySelector(`[data-field="${name.split(".")[0]}"]`);
  if (!box) return false;
  const slot = box.querySelector(".field-error");
  slot.textContent = slot.textContent ? slot.textContent + " " + text : text;
  slot.hidden = false;
  const control = box.querySelector("input, select, textarea");
  if (control) control.setAttribute("aria-invalid", "true");
  return true;
}

/**
 * Show a problem answer on a form: a validation_error's errors beside their fields
 * (the API's own message, after the plain words), anything else in the form's message.
 */
export function showProblem(form, problem) {
  const message = form.querySelector(".form-problem");
  const leftOver = [];
  if (problem && problem.code === "validation_error" && Array.isArray(problem.errors)) {
    for (const error of problem.errors) {
      if (!fieldError(form, error.field || "", error.message)) leftOver.push((error.field ? error.field + ": " : "") + error.message);
    }
  }
  const text = problemText(problem) + (leftOver.length ? " " + leftOver.join("; ") : "");
  if (message) say(message, text, "problem");
  const first = form.querySelector("[aria-invalid]");
  if (first) first.focus();
  else if (message) message.focus();
}

/** The form's message line, for whole-form problems (role=alert). */
export function formProblem() {
  return h("p", { class: "form-problem", role: "alert", tabindex: "-1", hidden: true });
}

/** Show a text in an element hidden while empty; `kind` styles it (problem, ok, warn). */
export function say(element, text, kind) {
  element.textContent = text || "";
  element.hidden = !text;
  element.dataset.kind = kind || "";
}

/** A table: columns [{label, cell(item) → node or text, num?}], with an empty-list line. */
export function table(columns, items, caption) {
  if (!items.length) return h("p", { class: "empty" }, t("list_empty"));
  // A wide table scrolls sideways in its box: the box takes the keyboard focus (arrow
  // keys scroll it) and is named after the table.
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption || t("table") },
    h(
      "table",
      {},
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
      h(
        "tbody",
        {},
        items.map((item) => h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(item)))))
      )
    )
  );
}

/** A view's heading and the area its content goes in. */
export function viewFrame(titleKey, ...children) {
  return [h("h1", { id: "view-title", tabindex: "-1" }, t(titleKey)), ...children];
}

/** The programme's time zone (YOUDAI_TIMEZONE, in the page's meta tag), never the browser's. */
export function timeZone() {
  const meta = document.querySelector('meta[name="youdai-timezone"]');
  return (meta && meta.content) || "Asia/Shanghai";
}

/** A short date-time in the programme's time zone. */
export function formatTime(iso) {
  if (!iso) return "";
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: timeZone(),
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(new Date(iso));
  const get = (type) => (parts.find((p) => p.type === type) || {}).value;
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}`;
}

/** How far the programme's wall clock is ahead of UTC at the instant `ms`, in ms. */
function zoneOffset(ms) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: timeZone(), year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(ms));
  const get = (type) => Number((parts.find((p) => p.type === type) || {}).value);
  return Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second")) - ms;
}

/** A YYYY-MM-DD date as the instant its day starts in the programme's time zone (RFC 3339). */
export function startOfLocalDay(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  const wall = Date.UTC(y, m - 1, d);
  let instant = wall - zoneOffset(wall);
  instant = wall - zoneOffset(instant); // the offset at that instant (a DST change that day)
  return new Date(instant).toISOString().replace(".000Z", "Z");
}

/** An instant as the calendar date it falls on in the programme's time zone. */
export function localDate(iso) {
  return iso ? formatTime(iso).slice(0, 10) : "";
}

/** The day before a YYYY-MM-DD date (an offer ending at 00:00 on the 2nd is valid through the 1st). */
export function dayBefore(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  const date = new Date(Date.UTC(y, m - 1, d - 1));
  return date.toISOString().slice(0, 10);
}

export function dayAfter(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

/** A copy-to-clipboard button for `text` that says when it has copied. */
export function copyButton(text) {
  const button = h("button", { type: "button", class: "quiet" }, t("copy"));
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = t("copied");
    } catch (error) {
      button.textContent = t("copy_failed");
    }
  });
  return button;
}
