/* Reports: group by any of partner, offer, category, month for a date range; the table
 * and its totals as the API computes them; CSV and XLSX downloads of the same query.
 */

import { api, listAll, withQuery } from "./api.js";
import { checkboxes, field, h, table, viewFrame } from "./dom.js";
import { problemText, t } from "./i18n.js";
import { holderCategory } from "./labels.js";
import { formatFen } from "./money.js";
import { isBureau } from "./roles.js";
import { go, href } from "./router.js";

const GROUPS = ["partner", "offer", "category", "month"];

export async function render(context) {
  const { staff, route } = context;
  const groups = (route.params.get("group_by") || "partner,month").split(",").filter((g) => GROUPS.includes(g));
  const query = { group_by: groups.join(",") };
  for (const name of ["from", "to", "partner_id"]) if (route.params.get(name)) query[name] = route.params.get(name);

  const partners = isBureau(staff) ? await listAll("/v1/partners", {}) : { ok: true, data: { items: [] } };
  const form = h("form", { class: "filters", id: "report-form", role: "search", "aria-label": t("filters") },
    checkboxes({ name: "group_by", legend: t("group_by"), options: GROUPS.map((g) => ({ value: g, label: t("group_" + g) })), values: groups }),
    field({ name: "from", label: t("from_date"), type: "date", value: query.from }),
    field({ name: "to", label: t("to_date"), type: "date", value: query.to }),
    isBureau(staff) ? field({ name: "partner_id", label: t("partner"), type: "select", value: query.partner_id, options: [{ value: "", label: t("any") }, ...(partners.ok ? partners.data.items : []).map((p) => ({ value: p.id, label: p.name }))] }) : null,
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("show"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = { group_by: Array.from(form.querySelectorAll('input[name="group_by"]:checked'), (i) => i.value).join(",") };
    for (const name of ["from", "to", "partner_id"]) {
      const control = form.elements.namedItem(name);
      if (control && control.value) params[name] = control.value;
    }
    go(href("reports", "", params));
  });

  const answer = await api("GET", "/v1/reports/discounts", { query: query });
  if (!answer.ok) return viewFrame("nav_reports", form, h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const report = answer.data;
  const columns = [];
  if (report.group_by.includes("partner")) columns.push({ label: t("group_partner"), cell: (r) => r.partner_name });
  if (report.group_by.includes("offer")) columns.push({ label: t("group_offer"), cell: (r) => r.offer_title });
  if (report.group_by.includes("category")) columns.push({ label: t("group_category"), cell: (r) => holderCategory(r.category) });
  if (report.group_by.includes("month")) columns.push({ label: t("group_month"), cell: (r) => r.month });
  columns.push(
    { label: t("redemptions"), cell: (r) => r.redemptions, num: true },
    { label: t("reversals"), cell: (r) => r.reversals, num: true },
    { label: t("fig_offline"), cell: (r) => r.offline, num: true },
    { label: t("fig_conflicts"), cell: (r) => r.conflicts, num: true },
    { label: t("purchase_total"), cell: (r) => formatFen(r.purchase_total), num: true },
    { label: t("discount_total"), cell: (r) => formatFen(r.discount_total), num: true }
  );
  const totals = report.totals;
  const downloads = h("p", { class: "actions" },
    h("a", { class: "button", id: "download-csv", href: withQuery("/v1/reports/discounts", Object.assign({}, query, { format: "csv" })), download: `youdai-report-${report.from}-${report.to}.csv` }, t("download_csv")),
    h("a", { class: "button", id: "download-xlsx", href: withQuery("/v1/reports/discounts", Object.assign({}, query, { format: "xlsx" })), download: `youdai-report-${report.from}-${report.to}.xlsx` }, t("download_xlsx")));
  return viewFrame("nav_reports", form,
    h("p", { class: "facts-line" }, t("report_period", { from: report.from, to: report.to })),
    h("dl", { class: "figures", id: "report-totals" },
      h("div", { class: "figure", dataset: { figure: "redemptions" } }, h("dt", {}, t("redemptions")), h("dd", {}, totals.redemptions)),
      h("div", { class: "figure", dataset: { figure: "reversals" } }, h("dt", {}, t("reversals")), h("dd", {}, totals.reversals)),
      h("div", { class: "figure", dataset: { figure: "offline" } }, h("dt", {}, t("fig_offline")), h("dd", {}, totals.offline)),
      h("div", { class: "figure", dataset: { figure: "conflicts" } }, h("dt", {}, t("fig_conflicts")), h("dd", {}, totals.conflicts)),
      h("div", { class: "figure", dataset: { figure: "purchase_total" } }, h("dt", {}, t("purchase_total")), h("dd", {}, formatFen(totals.purchase_total))),
      h("div", { class: "figure", dataset: { figure: "discount_total" } }, h("dt", {}, t("discount_total")), h("dd", {}, formatFen(totals.discount_total)))),
    downloads,
    table(columns, report.rows, t("nav_reports")));
}
