/* The ledger (bureau): the log's latest signed checkpoint, and the signed statement of a
 * year as a printable A4 page in Chinese — the figures, the log's root and a QR code of
 * the statement's SHA-256 digest — with the statement itself to download for auditors.
 *
 * The figures are the signed payload's own, read from the JWS the service answered: the
 * page works nothing out, so what is printed is what an auditor verifies.
 */

import { api } from "./api.js";
import { formatTime, h, timeZone, viewFrame } from "./dom.js";
import { problemText, t, textIn } from "./i18n.js";
import { formatFen } from "./money.js";
import { go, href } from "./router.js";

const MEASURES = ["redemptions", "reversals", "purchase_total", "discount_total"];

function thisYear() {
  return Number(new Intl.DateTimeFormat("en-CA", { timeZone: timeZone(), year: "numeric" }).format(new Date()));
}

/** The payload of a compact JWS (its signature is the auditor's to check). */
function payloadOf(jws) {
  const part = jws.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(part + "=".repeat((4 - (part.length % 4)) % 4)), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

async function sha256Hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function checkpointSection(answer) {
  if (!answer.ok && answer.status === 404) return h("p", { id: "checkpoint" }, t("ledger_no_checkpoint"));
  if (!answer.ok) return h("p", { class: "problem", role: "alert" }, problemText(answer.problem));
  const c = answer.data;
  return h("dl", { id: "checkpoint", class: "figures" },
    h("div", { class: "figure" }, h("dt", {}, t("ledger_size")), h("dd", {}, String(c.size))),
    h("div", { class: "figure" }, h("dt", {}, t("ledger_signed_at")), h("dd", {}, formatTime(c.at))),
    h("div", { class: "figure wide" }, h("dt", {}, t("ledger_root")), h("dd", {}, h("code", {}, c.root))));
}

/** The printable statement, in Chinese whatever the console's language. */
function statementPage(jws, claims, digest) {
  const zh = (key, vars) => textIn("zh", key, vars);
  const row = (label, figures) => h("tr", {}, h("th", { scope: "row" }, label), ...MEASURES.map((m) => h("td", { class: "num" }, m.endsWith("_total") ? formatFen(figures[m]) : String(figures[m]))));
  const head = h("thead", {}, h("tr", {}, h("th", { scope: "col" }, ""), ...MEASURES.map((m) => h("th", { scope: "col" }, zh("stmt_" + m)))));
  const categories = Object.entries(claims.by_holder_category).map(([category, figures]) => row(zh("hcat_" + category), figures));
  const partners = claims.by_partner.map((p) => row(p.name || p.partner_id, p));
  const log = claims.log;
  return h("article", { id: "statement", class: "statement", lang: "zh-CN", "aria-label": zh("stmt_title") },
    h("h2", {}, zh("stmt_title")),
    h("p", {}, zh("stmt_period", { from: claims.period.from, to: claims.period.to, zone: claims.period.timezone })),
    h("p", { class: claims.final ? "" : "not-final" }, claims.final ? zh("stmt_final") : zh("stmt_not_final", { at: formatTime(claims.generated_at) })),
    h("dl", { class: "figures" },
      ...[
        ["stmt_partners", `${claims.partners.enrolled}（${zh("stmt_active")} ${claims.partners.active}）`],
        ["stmt_holders", String(claims.holders)],
        ["stmt_vouchers", String(claims.vouchers_issued)],
        ["stmt_redemptions", String(claims.redemptions)],
        ["stmt_reversals", String(claims.reversals)],
        ["stmt_discount_total", formatFen(claims.discount_total)],
      ].map(([key, value]) => h("div", { class: "figure", dataset: { figure: key } }, h("dt", {}, zh(key)), h("dd", {}, value)))),
    h("table", {}, h("caption", {}, zh("stmt_by_category")), head.cloneNode(true), h("tbody", {}, categories)),
    h("table", {}, h("caption", {}, zh("stmt_by_partner")), head, h("tbody", {}, partners)),
    h("section", { class: "seal" },
      h("img", { src: `/v1/reports/statement/qr.svg?digest=${digest}`, alt: zh("stmt_qr_alt"), width: 160, height: 160 }),
      h("dl", {},
        h("dt", {}, zh("stmt_log")), h("dd", {}, zh("stmt_log_text", { size: log.size, first: log.first_index ?? "—", last: log.last_index ?? "—" })),
        h("dt", {}, zh("ledger_root")), h("dd", {}, h("code", {}, log.root || "—")),
        h("dt", {}, zh("stmt_digest")), h("dd", {}, h("code", { id: "statement-digest" }, digest)),
        h("dt", {}, zh("stmt_issuer")), h("dd", {}, claims.iss))),
    h("p", { class: "how" }, zh("stmt_how_to_verify")));
}

export async function render(context) {
  const { route } = context;
  const given = Number(route.params.get("year"));
  const year = Number.isInteger(given) && given >= 2000 && given < 2200 ? given : null;
  const checkpoint = await api("GET", "/v1/ledger/checkpoint");

  const picker = h("form", { class: "filters no-print", "aria-label": t("stmt_prepare") },
    h("div", { class: "field" }, h("label", { for: "year" }, t("year")),
      h("select", { id: "year", name: "year" },
        Array.from({ length: 6 }, (_, i) => thisYear() - i).map((y) => h("option", { value: y, selected: y === (year || thisYear()) }, String(y))))),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("stmt_prepare"))));
  picker.addEventListener("submit", (event) => {
    event.preventDefault();
    go(href("ledger", "", { year: picker.elements.namedItem("year").value }));
  });
  const parts = [h("h2", { class: "no-print" }, t("ledger_checkpoint")), checkpointSection(checkpoint), h("h2", { class: "no-print" }, t("stmt_heading")), picker];
  if (year === null) return viewFrame("nav_ledger", ...parts);

  const answer = await api("GET", "/v1/reports/statement", { query: { year: year } });
  if (!answer.ok) return viewFrame("nav_ledger", ...parts, h("p", { class: "problem", role: "alert" }, problemText(answer.problem)));
  const jws = answer.data.statement;
  const digest = await sha256Hex(jws);
  const file = URL.createObjectURL(new Blob([JSON.stringify({ statement: jws }) + "\n"], { type: "application/json" }));
  const printButton = h("button", { type: "button" }, t("stmt_print"));
  printButton.addEventListener("click", () => window.print());
  const actions = h("div", { class: "actions no-print" }, printButton,
    h("a", { class: "button", href: file, download: `youdai-statement-${year}.json` }, t("stmt_download")));
  return viewFrame("nav_ledger", ...parts, actions, statementPage(jws, payloadOf(jws), digest));
}
