/* The dashboard: the year's headline figures (the summary's, for the bureau; the
 * discount report's totals for a partner) and two SVG charts of the discount value:
 * by month, and by partner category (bureau) or by offer (partner).
 */

import { api, listAll } from "./api.js";
import { columnChart, barChart } from "./charts.js";
import { h, timeZone, viewFrame } from "./dom.js";
import { problemText, t } from "./i18n.js";
import { PARTNER_CATEGORIES, partnerCategory } from "./labels.js";
import { formatFen } from "./money.js";
import { can } from "./roles.js";
import { go, href } from "./router.js";

function thisYear() {
  return Number(new Intl.DateTimeFormat("en-CA", { timeZone: timeZone(), year: "numeric" }).format(new Date()));
}

function figure(key, text, id) {
  return h("div", { class: "figure", dataset: { figure: id } }, h("dt", {}, t(key)), h("dd", {}, text));
}

export async function render(context) {
  const { staff, route } = context;
  const given = Number(route.params.get("year"));
  const year = Number.isInteger(given) && given >= 2000 && given < 2200 ? given : thisYear();
  const period = { from: `${year}-01-01`, to: `${year}-12-31` };
  const bureau = can(staff, "summary");

  const yearPicker = h(
    "form",
    { class: "filters", role: "search", "aria-label": t("choose_year") },
    h("div", { class: "field" }, h("label", { for: "year" }, t("year")),
      h("select", { id: "year", name: "year" },
        Array.from({ length: 6 }, (_, i) => thisYear() - i).map((y) => h("option", { value: y, selected: y === year }, String(y))))),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("show")))
  );
  yearPicker.addEventListener("submit", (event) => {
    event.preventDefault();
    go(href("dashboard", "", { year: yearPicker.elements.namedItem("year").value }));
  });

  const byMonth = await api("GET", "/v1/reports/discounts", { query: Object.assign({ group_by: "month" }, period) });
  const bySecond = await api("GET", "/v1/reports/discounts", { query: Object.assign({ group_by: bureau ? "partner" : "offer" }, period) });
  const summary = bureau ? await api("GET", "/v1/reports/summary", { query: period }) : null;
  const waiting = can(staff, "applications") ? await listAll("/v1/partner-applications", { status: "submitted" }) : null;
  const failed = [byMonth, bySecond, summary, waiting].find((answer) => answer && !answer.ok);
  if (failed) return viewFrame("nav_dashboard", yearPicker, h("p", { class: "problem", role: "alert" }, problemText(failed.problem)));

  let figures;
  if (bureau) {
    const s = summary.data;
    figures = [
      figure("fig_partners_enrolled", s.partners.enrolled, "partners_enrolled"),
      figure("fig_partners_active", s.partners.active, "partners_active"),
      figure("fig_holders", s.holders, "holders"),
      figure("fig_vouchers", s.vouchers_issued, "vouchers_issued"),
      figure("fig_redemptions", s.redemptions, "redemptions"),
      figure("fig_reversals", s.reversals, "reversals"),
      figure("fig_offline", s.offline, "offline"),
      figure("fig_conflicts", s.conflicts, "conflicts"),
      figure("fig_discount_total", formatFen(s.discount_total), "discount_total"),
      // Not of the year: the firms that asked to join and wait for the bureau now.
      figure("fig_applications_waiting", h("a", { href: href("applications"), "data-nav": true }, String(waiting.data.items.length)), "applications_waiting"),
    ];
  } else {
    const totals = byMonth.data.totals;
    figures = [
      figure("fig_redemptions", totals.redemptions, "redemptions"),
      figure("fig_reversals", totals.reversals, "reversals"),
      figure("fig_offline", totals.offline, "offline"),
      figure("fig_conflicts", totals.conflicts, "conflicts"),
      figure("fig_purchase_total", formatFen(totals.purchase_total), "purchase_total"),
      figure("fig_discount_total", formatFen(totals.discount_total), "discount_total"),
    ];
  }

  const months = Array.from({ length: 12 }, (_, i) => `${year}-${String(i + 1).padStart(2, "0")}`);
  const monthTotals = Object.fromEntries(byMonth.data.rows.map((row) => [row.month, row.discount_total]));
  const monthItems = months.map((month) => ({
    label: t("month_short", { month: Number(month.slice(5)) }),
    value: monthTotals[month] || 0,
    short: monthTotals[month] ? formatFen(monthTotals[month]) : "",
  }));

  let secondItems;
  if (bureau) {
    const partners = await listAll("/v1/partners", {});
    const categoryOf = partners.ok ? Object.fromEntries(partners.data.items.map((p) => [p.id, p.category])) : {};
    const sums = Object.fromEntries(PARTNER_CATEGORIES.map((c) => [c, 0]));
    for (const row of bySecond.data.rows) sums[categoryOf[row.partner_id] || "other"] += row.discount_total;
    secondItems = PARTNER_CATEGORIES.map((c) => ({ label: partnerCategory(c), value: sums[c] }));
  } else {
    secondItems = bySecond.data.rows.map((row) => ({ label: row.offer_title, value: row.discount_total }));
  }

  const secondTitle = t(bureau ? "chart_by_partner_category" : "chart_by_offer", { year: year });
  return viewFrame(
    "nav_dashboard",
    yearPicker,
    h("section", { "aria-labelledby": "headline" }, h("h2", { id: "headline" }, t("headline", { year: year })), h("dl", { class: "figures" }, figures)),
    h("div", { class: "charts" },
      h("section", { class: "panel", "aria-labelledby": "chart-month" },
        h("h2", { id: "chart-month" }, t("chart_by_month", { year: year })),
        columnChart(monthItems, { title: t("chart_by_month", { year: year }), format: formatFen })),
      h("section", { class: "panel", "aria-labelledby": "chart-second" },
        h("h2", { id: "chart-second" }, secondTitle),
        secondItems.length ? barChart(secondItems, { title: secondTitle, format: formatFen }) : h("p", { class: "empty" }, t("list_empty"))))
  );
}
