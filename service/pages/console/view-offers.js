/* Offers: list; create and edit every kind with docs/product.md's rules explained beside the
 * fields; a preview of what a sample purchase would get; publish, pause, end.
 * Money is typed in yuan and sent in fen (string arithmetic, money.js).
 */

import { api, listAll } from "./api.js";
import { checkboxes, checkedValues, clearErrors, dayAfter, dayBefore, field, formProblem, formatTime, h, localDate, say, showProblem, startOfLocalDay, table, value, viewFrame } from "./dom.js";
import { language, problemText, t } from "./i18n.js";
import { HOLDER_CATEGORIES, OFFER_KINDS, PERIODS, holderCategory, kind, options, status } from "./labels.js";
import { filters, listQuery, pager } from "./lists.js";
import { mainKindField, nextStatuses, statuses } from "./model.js";
import { bpToPercentText, fenToYuanText, formatFen, parsePercent, parseYuan } from "./money.js";
import { quote } from "./pricing.js";
import { can, isBureau } from "./roles.js";
import { go, href } from "./router.js";

export async function render(context) {
  const { route } = context;
  if (route.id === "new") return editor(context, null);
  if (route.id) {
    const answer = await api("GET", "/v1/offers/" + encodeURIComponent(route.id));
    if (!answer.ok) return viewFrame("nav_offers", h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
    return editor(context, answer.data);
  }
  return list(context);
}

async function partnerNames(staff) {
  if (!isBureau(staff)) return {};
  const answer = await listAll("/v1/partners", {});
  return answer.ok ? Object.fromEntries(answer.data.items.map((p) => [p.id, p])) : {};
}

async function list(context) {
  const { staff, route } = context;
  const partners = await partnerNames(staff);
  const answer = await api("GET", "/v1/offers", { query: listQuery(route, ["q", "status", "partner_id", "category"]) });
  const fields = [
    field({ name: "q", label: t("search_title"), type: "search" }),
    field({ name: "status", label: t("status"), type: "select", options: options(statuses("offer"), status, "any") }),
  ];
  if (isBureau(staff)) {
    fields.push(field({ name: "partner_id", label: t("partner"), type: "select", options: [{ value: "", label: t("any") }, ...Object.values(partners).map((p) => ({ value: p.id, label: p.name }))] }));
  }
  const create = can(staff, "offers.write") ? h("p", {}, h("a", { class: "button primary", href: href("offers", "new"), "data-nav": true }, t("offer_create"))) : null;
  if (!answer.ok) return viewFrame("nav_offers", create, filters(route, fields), h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const columns = [
    { label: t("offer_title"), cell: (o) => h("a", { href: href("offers", o.id), "data-nav": true }, o.title) },
    isBureau(staff) ? { label: t("partner"), cell: (o) => (partners[o.partner_id] || {}).name || o.partner_id } : null,
    { label: t("kind"), cell: (o) => kind(o.kind) },
    { label: t("terms"), cell: (o) => terms(o) },
    { label: t("status"), cell: (o) => h("span", { class: "status status-" + o.status }, status(o.status)) },
    { label: t("redeemed_count"), cell: (o) => o.redeemed_count, num: true },
    { label: t("spent"), cell: (o) => formatFen(o.spent), num: true },
  ].filter(Boolean);
  return viewFrame("nav_offers", create, filters(route, fields), table(columns, answer.data.items, t("nav_offers")), pager(route, answer.data.next_cursor));
}

/** An offer's rules in words, as the service wrote them (no page works them out again). */
function terms(o) {
  return o.terms[language()];
}

/** A date in the programme's time zone as the instant its day starts there. */
function startOfDay(date) {
  return startOfLocalDay(date);
}

function explain(key) {
  return h("p", { class: "explain" }, t(key));
}

async function editor(context, offer) {
  const { staff } = context;
  const writable = can(staff, "offers.write") && (!offer || offer.status !== "ended");
  const o = offer || { kind: "percent_off", eligible_categories: [], uses_per_voucher: 1 };
  const partners = offer ? {} : await partnerNames(staff);
  const money = (name, label, hintKey) => field({ name: name, label: label, value: fenToYuanText(o[name]), attrs: { inputmode: "decimal", autocomplete: "off" }, hint: hintKey ? t(hintKey) : null });
  const kindChoice = h("fieldset", { class: "field kinds", dataset: { field: "kind" } }, h("legend", {}, t("kind")),
    OFFER_KINDS.map((k) => h("label", { class: "kind-choice" },
      h("input", { type: "radio", name: "kind", value: k, checked: o.kind === k }), " ", h("strong", {}, kind(k)), h("span", { class: "hint" }, t("kind_" + k + "_rule")))),
    h("p", { class: "field-error", hidden: true }));
  const kindFields = {
    percent_off: [field({ name: "percent_bp", label: t("percent"), value: bpToPercentText(o.percent_bp), attrs: { inputmode: "decimal" }, hint: t("percent_hint") }), money("max_discount", t("max_discount"), "max_discount_hint")],
    amount_off: [money("amount_off", t("amount_off"), "amount_off_hint")],
    fixed_price: [money("fixed_price", t("fixed_price"), "fixed_price_hint")],
    service: [money("nominal_value", t("nominal_value"), "nominal_value_hint")],
  };
  const kindBoxes = Object.fromEntries(OFFER_KINDS.map((k) => [k, h("div", { class: "kind-fields", dataset: { kind: k } }, kindFields[k])]));
  const holderLimit = o.holder_limit || {};
  const form = h("form", { class: "panel offer-form", id: "offer-form", novalidate: true },
    offer ? null : isBureau(staff)
      ? field({ name: "partner_id", label: t("partner"), type: "select", options: [{ value: "", label: t("choose") }, ...Object.values(partners).filter((p) => p.status !== "terminated").map((p) => ({ value: p.id, label: p.name }))] })
      : null,
    field({ name: "title", label: t("offer_title"), value: o.title, required: true, attrs: { maxlength: 200 } }),
    field({ name: "description", label: t("description"), type: "textarea", value: o.description }),
    kindChoice,
    Object.values(kindBoxes),
    money("min_purchase", t("min_purchase"), "min_purchase_hint"),
    h("fieldset", { class: "group" }, h("legend", {}, t("window")), explain("window_rule"),
      h("div", { class: "row" },
        field({ name: "starts_on", label: t("starts_on"), type: "date", value: o.starts_at ? localDate(o.starts_at) : "" }),
        field({ name: "ends_on", label: t("ends_on"), type: "date", value: o.ends_at ? dayBefore(localDate(o.ends_at)) : "", hint: t("ends_on_hint") }))),
    checkboxes({ name: "eligible_categories", legend: t("eligible_categories"), options: options(HOLDER_CATEGORIES, holderCategory), values: o.eligible_categories, hint: t("eligible_hint") }),
    h("fieldset", { class: "group" }, h("legend", {}, t("limits")), explain("limits_rule"),
      h("div", { class: "row" },
        field({ name: "uses_per_voucher", label: t("uses_per_voucher"), type: "number", value: o.uses_per_voucher, attrs: { min: 1, max: 10000, step: 1 }, hint: t("uses_per_voucher_hint") }),
        field({ name: "voucher_valid_days", label: t("voucher_valid_days"), type: "number", value: o.voucher_valid_days, attrs: { min: 1, max: 3660, step: 1 }, hint: t("voucher_valid_days_hint") })),
      h("div", { class: "row", dataset: { field: "holder_limit" } },
        field({ name: "holder_limit_count", label: t("holder_limit_count"), type: "number", value: holderLimit.count, attrs: { min: 1, max: 10000, step: 1 }, hint: t("holder_limit_hint") }),
        field({ name: "holder_limit_period", label: t("holder_limit_period"), type: "select", value: holderLimit.period || "month", options: options(PERIODS, (p) => t("period_" + p)) })),
      h("div", { class: "row" },
        field({ name: "total_redemptions", label: t("total_redemptions"), type: "number", value: o.total_redemptions, attrs: { min: 1, step: 1 }, hint: t("total_redemptions_hint") }),
        money("budget", t("budget"), "budget_hint"))),
    formProblem(),
    writable ? h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, offer ? t("save") : t("offer_create"))) : null
  );
  if (!writable) for (const control of form.querySelectorAll("input, select, textarea")) control.disabled = true;

  const showKind = () => {
    const chosen = (form.querySelector('input[name="kind"]:checked') || {}).value;
    for (const [k, box] of Object.entries(kindBoxes)) box.hidden = k !== chosen;
    updatePreview();
  };

  // The preview: what a sample purchase would get under the rule as typed.
  const sample = h("input", { id: "sample", inputmode: "decimal", value: "100.00", "aria-describedby": "sample-result" });
  const result = h("p", { id: "sample-result", "aria-live": "polite" });
  const updatePreview = () => {
    const read = readRule(form);
    const purchase = parseYuan(sample.value, { required: true, minimum: 1 });
    if (read.errors.length || purchase.error) return say(result, t("preview_incomplete"), "warn");
    // The till's own pricing (pricing.js, checked fen for fen against the service's).
    const got = quote(read.rule, purchase.fen);
    const [discount, payable] = [formatFen(got.discount_amount), formatFen(got.payable_amount)];
    if (got.problem && got.problem.code === "below_min_purchase") {
      return say(result, t("preview_below_min", { amount: formatFen(read.rule.min_purchase) }), "warn");
    }
    if (got.problem) return say(result, t("preview_incomplete"), "warn");
    if (read.rule.kind === "service") return say(result, t("preview_service", { value: discount, payable: payable }), "ok");
    say(result, t("preview_money", { purchase: formatFen(purchase.fen), discount: discount, payable: payable }), "ok");
  };
  form.addEventListener("input", updatePreview);
  form.addEventListener("change", showKind);
  sample.addEventListener("input", updatePreview);
  const preview = h("section", { class: "panel preview", "aria-labelledby": "preview-heading" },
    h("h2", { id: "preview-heading" }, t("preview_title")),
    h("div", { class: "field" }, h("label", { for: "sample" }, t("sample_purchase")), sample), result);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const read = readOffer(form, offer, staff);
    if (read.errors.length) return showProblem(form, { code: "validation_error", errors: read.errors });
    const answer = offer
      ? await api("PATCH", "/v1/offers/" + encodeURIComponent(offer.id), { body: read.body })
      : await api("POST", "/v1/offers", { body: read.body });
    if (!answer.ok) return showProblem(form, mapFields(answer.problem));
    go(href("offers", answer.data.id), { replace: !offer });
  });

  const message = h("p", { class: "form-problem", role: "alert", tabindex: "-1", hidden: true });
  const statusActions = offer && can(staff, "offers.write")
    ? nextStatuses("offer", offer.status).map((next) => h("button", { type: "button", class: next === "ended" ? "danger" : "primary", onclick: async () => {
        if (next === "ended" && !window.confirm(t("confirm_end_offer"))) return;
        const changed = await api("PATCH", "/v1/offers/" + encodeURIComponent(offer.id), { body: { status: next } });
        if (!changed.ok) return say(message, problemText(changed.problem), "problem");
        context.rerender();
      } }, t(offer.status === "paused" && next === "active" ? "offer_resume" : "offer_to_" + next)))
    : [];
  const heading = h("h1", { id: "view-title", tabindex: "-1" }, offer ? offer.title : t("offer_create"));
  const facts = offer ? h("p", { class: "facts-line" },
    h("span", { class: "status status-" + offer.status, id: "offer-status" }, status(offer.status)), " · ",
    t("redeemed_count"), ": ", offer.redeemed_count, " · ", t("spent"), ": ", formatFen(offer.spent), " · ", t("updated_at"), ": ", formatTime(offer.updated_at)) : null;
  setTimeout(showKind, 0);
  return [h("p", {}, h("a", { href: href("offers"), "data-nav": true }, t("back_to_list"))), heading, facts, message,
    statusActions.length ? h("div", { class: "actions" }, statusActions) : null,
    h("div", { class: "offer-layout" }, form, preview)];
}

/** The price rule as typed (for the preview), with the errors of its fields. */
function readRule(form) {
  const errors = [];
  const chosen = (form.querySelector('input[name="kind"]:checked') || {}).value;
  const rule = { kind: chosen, min_purchase: null, max_discount: null };
  const moneyField = (name, required, minimum) => {
    const parsed = parseYuan(value(form, name), { required: required, minimum: minimum });
    if (parsed.error) errors.push({ field: name, message: t(parsed.error) });
    return parsed.fen === undefined ? null : parsed.fen;
  };
  if (chosen === "percent_off") {
    const parsed = parsePercent(value(form, "percent_bp"));
    if (parsed.error) errors.push({ field: "percent_bp", message: t(parsed.error) });
    rule.percent_bp = parsed.bp;
    rule.max_discount = moneyField("max_discount", false, 1);
  } else if (chosen) {
    rule[mainKindField(chosen)] = moneyField(mainKindField(chosen), true, chosen === "amount_off" ? 1 : 0);
  } else {
    errors.push({ field: "kind", message: t("required") });
  }
  rule.min_purchase = moneyField("min_purchase", false, 0);
  return { rule: rule, errors: errors };
}

function wholeNumber(form, name, errors) {
  const text = value(form, name);
  if (!text) return null;
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    errors.push({ field: name, message: t("whole_number") });
    return null;
  }
  return Number(text);
}

/** The body to send: every field of the form, money in fen, dates as instants. */
function readOffer(form, offer, staff) {
  const { rule, errors } = readRule(form);
  const body = {
    title: value(form, "title"),
    description: form.elements.namedItem("description").value,
    kind: rule.kind,
    percent_bp: null,
    max_discount: null,
    amount_off: null,
    fixed_price: null,
    nominal_value: null,
    min_purchase: rule.min_purchase,
  };
  if (!body.title) errors.push({ field: "title", message: t("required") });
  for (const name of ["percent_bp", "max_discount", "amount_off", "fixed_price", "nominal_value"]) {
    if (rule[name] !== undefined && rule[name] !== null) body[name] = rule[name];
  }
  if (offer) {
    // A PATCH sends only what changes kind-wise: the kind's own fields and no other kind's.
    for (const name of ["percent_bp", "max_discount", "amount_off", "fixed_price", "nominal_value"]) {
      if (body[name] === null && offer[name] === null) delete body[name];
    }
  } else {
    for (const name of Object.keys(body)) if (body[name] === null) delete body[name];
  }
  if (!offer && isBureau(staff)) {
    body.partner_id = value(form, "partner_id");
    if (!body.partner_id) errors.push({ field: "partner_id", message: t("required") });
  }
  const starts = value(form, "starts_on");
  const ends = value(form, "ends_on");
  body.starts_at = starts ? startOfDay(starts) : null;
  body.ends_at = ends ? startOfDay(dayAfter(ends)) : null;
  if (starts && ends && ends < starts) errors.push({ field: "ends_on", message: t("ends_before_starts") });
  body.eligible_categories = checkedValues(form, "eligible_categories");
  body.uses_per_voucher = wholeNumber(form, "uses_per_voucher", errors) || 1;
  body.voucher_valid_days = wholeNumber(form, "voucher_valid_days", errors);
  const count = wholeNumber(form, "holder_limit_count", errors);
  body.holder_limit = count ? { count: count, period: value(form, "holder_limit_period") } : null;
  body.total_redemptions = wholeNumber(form, "total_redemptions", errors);
  const budget = parseYuan(value(form, "budget"), { minimum: 1 });
  if (budget.error) errors.push({ field: "budget", message: t(budget.error) });
  body.budget = budget.fen === undefined ? null : budget.fen;
  if (!offer) {
    for (const name of ["starts_at", "ends_at", "voucher_valid_days", "holder_limit", "total_redemptions", "budget"]) if (body[name] === null) delete body[name];
  }
  return { body: body, errors: errors };
}

/** The API names some fields differently from the form: put their errors where they are typed. */
function mapFields(problem) {
  if (!problem || !Array.isArray(problem.errors)) return problem;
  const names = { starts_at: "starts_on", ends_at: "ends_on", "holder_limit.count": "holder_limit_count", "holder_limit.period": "holder_limit_period", holder_limit: "holder_limit_count" };
  return Object.assign({}, problem, { errors: problem.errors.map((e) => Object.assign({}, e, { field: names[e.field] || e.field })) });
}
