/* The console: sign-in, then the views of the signed-in account's role (docs/staff.md).
 * Each view module exports render(context) → nodes (or a promise of them).
 */

import { useStaffSession, whenSignedOut } from "./api.js";
import { h } from "./dom.js";
import { language, loadMessages, onLanguageChange, problemText, setLanguage, t } from "./i18n.js";
import { loadModel } from "./model.js";
import { views } from "./roles.js";
import { current, go, href, start } from "./router.js";
import { forget, load, mustEnrol, signOut, signedIn } from "./session.js";
import { enrolView, setupView, signInView } from "./signin.js";
import * as applications from "./view-applications.js";
import * as audit from "./view-audit.js";
import * as dashboard from "./view-dashboard.js";
import * as holders from "./view-holders.js";
import * as ledger from "./view-ledger.js";
import * as offers from "./view-offers.js";
import * as partners from "./view-partners.js";
import * as redemptions from "./view-redemptions.js";
import * as reports from "./view-reports.js";
import * as staffView from "./view-staff.js";

const VIEWS = {
  dashboard: dashboard,
  partners: partners,
  partner: partners,
  applications: applications,
  offers: offers,
  holders: holders,
  redemptions: redemptions,
  reports: reports,
  audit: audit,
  ledger: ledger,
  staff: staffView,
};

const main = document.getElementById("view");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const signOutButton = document.getElementById("sign-out");
const langButton = document.getElementById("lang");
let rendering = 0;

function drawChrome() {
  const staff = signedIn();
  document.title = t("console_title");
  document.getElementById("brand").textContent = t("console_title");
  document.getElementById("skip").textContent = t("skip_to_content");
  nav.setAttribute("aria-label", t("navigation"));
  langButton.textContent = t("other_language");
  langButton.setAttribute("lang", language() === "zh" ? "en" : "zh-CN");
  signOutButton.textContent = t("sign_out");
  signOutButton.hidden = !staff;
  who.textContent = staff ? `${staff.display_name || staff.email} · ${t("role_" + staff.role)}` : "";
  const route = current();
  const items = staff && !mustEnrol() ? views(staff) : [];
  nav.replaceChildren(
    ...items.map((name) => {
      const target = name === "partner" ? href("partners", staff.partner_id) : href(name);
      const active = route.view === name || (name === "partner" && route.view === "partners") || (name === "dashboard" && !route.view);
      return h("a", { href: target, "data-nav": true, "aria-current": active ? "page" : null }, t("nav_" + name));
    })
  );
  if (staff && !mustEnrol()) nav.append(h("a", { href: href("account"), "data-nav": true, "aria-current": route.view === "account" ? "page" : null }, t("nav_account")));
}

async function render() {
  const ticket = (rendering += 1);
  const route = current();
  drawChrome();
  let nodes;
  let shown = route.view || "dashboard";
  const staff = signedIn();
  if (route.view === "setup") nodes = setupView(route.params.get("token"));
  else if (!staff) [shown, nodes] = ["sign-in", signInView(afterSignIn)];
  else if (mustEnrol()) [shown, nodes] = ["enrol", enrolView(afterEnrol, true)];
  else if (route.view === "account") nodes = enrolView(() => {}, false);
  else {
    const module = VIEWS[shown];
    if (!module || !views(staff).includes(shown === "partners" && staff.role === "partner_manager" ? "partner" : shown)) {
      nodes = [h("h1", { id: "view-title", tabindex: "-1" }, t("not_offered_title")), h("p", {}, t("not_offered"))];
    } else {
      // Another view (the sign-in form above all) must not stay usable while this one
      // loads: what is typed into it would be lost. The same view, filtered or paged,
      // stays in place, marked busy, so the page does not jump.
      if (main.dataset.view !== shown) main.replaceChildren(h("p", { class: "loading" }, t("loading")));
      main.setAttribute("aria-busy", "true");
      try {
        nodes = await module.render({ staff: staff, route: route, rerender: render });
      } catch (error) {
        nodes = [h("p", { class: "problem", role: "alert" }, problemText({ code: "internal_error" }))];
        console.error(error);
      }
      main.removeAttribute("aria-busy");
    }
  }
  if (ticket !== rendering) return; // a newer navigation won
  main.replaceChildren(...[nodes].flat(Infinity).filter((node) => node !== null && node !== undefined && node !== false));
  main.dataset.view = shown;
  const title = document.getElementById("view-title");
  if (title) document.title = title.textContent + " · " + t("console_title");
}

/** The sign-in answer names the account; GET /v1/staff/me adds what it must do first. */
async function afterSignIn() {
  await load();
  go(location.pathname + location.search, { replace: true });
}

async function afterEnrol() {
  await load();
  render();
}

async function boot() {
  useStaffSession();
  await Promise.all([loadMessages("youdai.console.lang"), loadModel()]);
  langButton.addEventListener("click", () => setLanguage(language() === "zh" ? "en" : "zh"));
  onLanguageChange(() => render());
  signOutButton.addEventListener("click", async () => {
    await signOut();
    go(href(""));
  });
  whenSignedOut(() => {
    forget();
    render();
  });
  const loaded = await load();
  if (loaded && loaded.problem) {
    main.replaceChildren(h("p", { class: "problem", role: "alert" }, problemText(loaded.problem)));
  }
  document.getElementById("loading").hidden = true;
  start(render);
}

boot();
