"""/console in a real browser, per role (docs/staff.md): bureau staff sign in (with a TOTP code
computed here), enrol partners and their tills' keys, offers of every kind, holders and
CSV imports, see and reverse redemptions, download reports whose totals match the API,
read the audit log, invite a colleague; a partner_manager sees only its own partner and
a bureau_auditor no holder data. Every view is photographed in zh and en (tests/output/)
and checked by axe-core, installed from the npm registry for the run (never shipped).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from service.domain.auth import Role
from service.qr import usable_cores
from tests.browser.conftest import MESSAGES, OUTPUT, Console, LiveApp, serving, ui
from tests.conftest import TestServer
from tests.helpers import make_holder, make_key, make_offer, make_partner

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is missing: pip install -e '.[test]'"
)
pyotp = pytest.importorskip("pyotp", reason="pyotp comes with the staff accounts (issue 16)")
try:
    from tests.helpers import STAFF_PASSWORD, make_staff
except ImportError:  # pragma: no cover - before the staff accounts of issue 16 are merged
    pytest.skip("staff accounts (issue 16) are not in this tree", allow_module_level=True)

expect = sync_api.expect
LAPTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}
PIN = "204816"
SHOTS = OUTPUT / "console"
#: Rows of the holder import whose progress is watched, per core hashing them.
IMPORT_ROWS_PER_CORE = 300


# -- arranging --------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def staff(live_app: LiveApp, role: str, partner_id: str | None = None, name: str = "") -> Any:
    email = f"{unique(role)}@bureau.example"
    display = (
        name
        or {"bureau_admin": "王主任", "bureau_auditor": "审计李", "partner_manager": "店长赵"}[role]
    )
    return live_app.run(
        lambda conn: make_staff(conn, role, partner_id, email=email, display_name=display)
    )


def call(
    live_app: LiveApp,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request to the API from outside the browser (a till, a holder's phone)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(live_app.url + path, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


@pytest.fixture(scope="module")
def admin_key(live_app: LiveApp) -> str:
    return live_app.run(lambda conn: make_key(conn, Role.ADMIN))


def claimed_token(live_app: LiveApp, offer_id: str) -> str:
    """A new holder claims a voucher of the offer, as /wallet would: its token, fresh."""
    card = unique("YD").upper()
    live_app.run(lambda conn: make_holder(conn, card_number=card, pin=PIN))
    status, session = call(
        live_app, "POST", "/v1/holder-sessions", {"card_number": card, "pin": PIN}
    )
    assert status == 201, session
    holder = session["token"]
    status, voucher = call(live_app, "POST", "/v1/me/vouchers", {"offer_id": offer_id}, holder)
    assert status in (200, 201), voucher
    _, minted = call(live_app, "GET", f"/v1/me/vouchers/{voucher['id']}/token", token=holder)
    return str(minted["token"])


def redeem_through_the_api(
    live_app: LiveApp, offer_id: str, scanner: str, purchase: int, reference: str
) -> dict[str, Any]:
    """A holder claims a voucher and a till redeems it, as /wallet and /scan would."""
    status, redemption = call(
        live_app,
        "POST",
        "/v1/redemptions",
        {
            "token": claimed_token(live_app, offer_id),
            "purchase_amount": purchase,
            "reference": reference,
        },
        scanner,
        {"Idempotency-Key": unique("till")},
    )
    assert status == 201, redemption
    return redemption


# -- the browser ------------------------------------------------------------------------


@pytest.fixture
def open_desk(browser: Any, live_app: LiveApp, console: Console) -> Iterator[Any]:
    """Opens pages in new browser contexts (a laptop in Chinese, on live_app, unless told
    otherwise)."""
    contexts: list[Any] = []

    def open_page(
        viewport: dict[str, int] = LAPTOP,
        locale: str = "zh-CN",
        app: LiveApp = live_app,
        timezone_id: str | None = None,
    ) -> Any:
        zone = {"timezone_id": timezone_id} if timezone_id else {}
        context = browser.new_context(
            base_url=app.url, viewport=viewport, locale=locale, accept_downloads=True, **zone
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return console.listen(context.new_page())

    yield open_page
    for context in contexts:
        context.close()


def sign_in(page: Any, account: Any, code: str | None = None, lang: str = "zh") -> None:
    page.goto("/console")
    page.fill("#f-email", account.email)
    page.fill("#f-password", STAFF_PASSWORD)
    page.get_by_role("button", name=ui("sign_in", lang)).click()
    if code is not None:
        expect(page.locator("#f-totp_code")).to_be_visible()
        page.fill("#f-totp_code", code)
        page.get_by_role("button", name=ui("sign_in", lang)).click()
    expect(page.locator("#sign-out")).to_be_visible()


def nav_names(page: Any) -> list[str]:
    return page.locator("#nav a").all_inner_texts()


def accept_dialogs(page: Any) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


# -- sign-in ----------------------------------------------------------------------------


def test_staff_enrols_a_second_factor_and_then_signs_in_with_a_code(
    live_app: LiveApp, open_desk: Any
) -> None:
    admin = staff(live_app, "bureau_admin")
    page = open_desk()
    sign_in(page, admin)
    page.get_by_role("link", name=ui("nav_account")).click()
    page.get_by_role("button", name=ui("totp_start")).click()
    expect(page.locator("img.qr")).to_be_visible()
    page.wait_for_function("() => document.querySelector('img.qr').naturalWidth > 0")
    secret = page.locator("#totp-secret").inner_text()
    page.fill("#f-code", pyotp.TOTP(secret).now())
    page.get_by_role("button", name=ui("totp_confirm")).click()
    expect(page.get_by_text(ui("totp_enabled"))).to_be_visible()

    page.get_by_role("button", name=ui("sign_out")).click()
    expect(page.locator("#f-email")).to_be_visible()
    page.fill("#f-email", admin.email)
    page.fill("#f-password", "not the password at all")
    page.get_by_role("button", name=ui("sign_in")).click()
    expect(page.locator(".form-problem")).to_have_text(
        MESSAGES["problems"]["unauthenticated"]["zh"]
    )
    # The same code twice is refused by the service: sign in with the next step's code,
    # which it accepts a step early (domain/totp.SKEW_STEPS), instead of waiting for it.
    sign_in(page, admin, code=pyotp.TOTP(secret).at(time.time() + 30))
    expect(page.locator("#view-title")).to_have_text(ui("nav_dashboard"))


@pytest.fixture(scope="module")
def totp_required_app(pg_server: TestServer) -> Iterator[LiveApp]:
    """A second youdai, as deploy/ configures it: bureau staff must have a second factor."""
    with serving(pg_server, YOUDAI_STAFF_TOTP="required_for_bureau") as app:
        yield app


def test_when_required_a_bureau_admin_without_a_second_factor_can_only_enrol(
    totp_required_app: LiveApp, open_desk: Any
) -> None:
    app = totp_required_app
    for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
        page = open_desk(locale=locale, app=app)
        sign_in(page, staff(app, "bureau_admin"), lang=lang)
        expect(page.locator("#view-title")).to_have_text(ui("totp_title", lang))
        expect(page.get_by_text(ui("totp_required_text", lang))).to_be_visible()
        expect(page.locator("#nav a")).to_have_count(0)
        page.screenshot(path=str(SHOTS / f"{lang}-laptop-enrol-required.png"), full_page=True)
    # Another view's URL shows the enrolment too: nothing else until it is done.
    page.goto("/console/partners")
    expect(page.locator("#view-title")).to_have_text(ui("totp_title"))
    expect(page.locator("#nav a")).to_have_count(0)
    expect(page.locator("table")).to_have_count(0)

    page.goto("/console")
    page.get_by_role("button", name=ui("totp_start")).click()
    expect(page.locator("img.qr")).to_be_visible()
    page.wait_for_function("() => document.querySelector('img.qr').naturalWidth > 0")
    secret = page.locator("#totp-secret").inner_text()
    page.fill("#f-code", pyotp.TOTP(secret).now())
    page.get_by_role("button", name=ui("totp_confirm")).click()
    expect(page.locator("#view-title")).to_have_text(ui("nav_dashboard"))
    expect(page.locator("dl.figures")).to_be_visible()
    page.get_by_role("link", name=ui("nav_partners")).click()
    expect(page.locator("#view-title")).to_have_text(ui("nav_partners"))
    page.reload()
    expect(page.locator("#view-title")).to_have_text(ui("nav_partners"))

    # A partner_manager is not bureau staff: no second factor is asked of it.
    partner = app.run(lambda conn: make_partner(conn, name=unique("书店")))
    manager = open_desk(app=app)
    sign_in(manager, staff(app, "partner_manager", partner))
    expect(manager.locator("#view-title")).to_have_text(ui("nav_dashboard"))
    assert ui("nav_offers") in nav_names(manager)


# -- partners and keys --------------------------------------------------------------------


def test_bureau_admin_enrols_and_activates_a_partner_and_issues_and_revokes_a_till_key(
    live_app: LiveApp, open_desk: Any
) -> None:
    page = open_desk()
    accept_dialogs(page)
    sign_in(page, staff(live_app, "bureau_admin"))
    page.get_by_role("link", name=ui("nav_partners")).click()
    page.get_by_role("link", name=ui("partner_enrol")).click()
    name = unique("区邮政分公司")
    page.fill("#f-name", name)
    page.select_option("#f-category", "postal")
    page.fill("#f-contact_phone", "010-12345678")
    page.get_by_role("button", name=ui("partner_enrol")).click()
    expect(page.locator("#view-title")).to_have_text(name)
    expect(page.locator("#partner-status")).to_have_text(ui("status_pending"))
    page.get_by_role("button", name=ui("partner_activate")).click()
    expect(page.locator("#partner-status")).to_have_text(ui("status_active"))

    page.fill("#f-label", "一号收银台")
    page.get_by_role("button", name=ui("key_issue")).click()
    key = page.locator("#new-key-value").input_value()
    assert key.startswith("yd_")
    expect(page.get_by_text(ui("key_once_warning"))).to_be_visible()
    expect(page.locator("#new-key").get_by_role("button", name=ui("copy"))).to_be_visible()
    probe = {"token": "not-a-token", "purchase_amount": 100}
    assert call(live_app, "POST", "/v1/redemptions/preview", probe, key)[0] == 422

    page.reload()  # the key is not shown again
    expect(page.locator("#new-key-value")).to_have_count(0)
    page.get_by_role("button", name=ui("key_revoke") + " 一号收银台").click()
    expect(page.get_by_role("cell", name="一号收银台")).to_have_count(0)
    assert call(live_app, "POST", "/v1/redemptions/preview", probe, key)[0] == 401


def test_partner_list_filters_live_in_the_url(live_app: LiveApp, open_desk: Any) -> None:
    name = unique("红色文旅")
    live_app.run(lambda conn: make_partner(conn, name=name, category="culture_tourism"))
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_auditor"))
    page.goto("/console/partners")
    page.fill("#f-q", name)
    page.get_by_role("button", name=ui("apply_filters")).click()
    expect(page).to_have_url(f"{live_app.url}/console/partners?q={urllib.parse.quote(name)}")
    expect(page.get_by_role("link", name=name)).to_be_visible()
    page.reload()
    expect(page.locator("#f-q")).to_have_value(name)
    expect(page.locator("tbody tr")).to_have_count(1)
    # A bureau_auditor reads; it is offered no change.
    expect(page.get_by_role("link", name=ui("partner_enrol"))).to_have_count(0)
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("button", name=ui("partner_suspend"))).to_have_count(0)
    expect(page.locator("#key-form")).to_have_count(0)


def test_the_next_page_of_a_list_lives_in_the_url(live_app: LiveApp, open_desk: Any) -> None:
    prefix = unique("连锁药房")
    names = [f"{prefix}-{i}" for i in range(3)]

    async def arrange(conn: Any) -> None:
        for name in names:
            await make_partner(conn, name=name, category="health")

    live_app.run(arrange)
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_auditor"))
    page.goto(f"/console/partners?q={urllib.parse.quote(prefix)}&limit=2")
    shown = page.locator("tbody tr td:first-child")
    expect(shown).to_have_count(2)
    first = shown.all_inner_texts()
    page.get_by_role("link", name=ui("next_page")).click()
    expect(page).to_have_url(re.compile(r"[?&]cursor="))
    expect(shown).to_have_count(1)
    second = shown.all_inner_texts()
    assert sorted(first + second) == names
    # The last page: no "next", a way back to the first; the same rows after a reload.
    expect(page.get_by_role("link", name=ui("next_page"))).to_have_count(0)
    url = page.url
    page.reload()
    expect(page).to_have_url(url)
    expect(shown).to_have_text(second)
    page.get_by_role("link", name=ui("first_page")).click()
    expect(shown).to_have_text(first)
    assert "limit=2" in page.url and "cursor=" not in page.url


# -- offers -------------------------------------------------------------------------------

KINDS = [
    # kind, the field typed, its yuan or percent text, what the API stores, the preview of ¥100
    ("percent_off", "#f-percent_bp", "12.5", ("percent_bp", 1250), "¥12.50", "¥87.50"),
    ("amount_off", "#f-amount_off", "20", ("amount_off", 2000), "¥20.00", "¥80.00"),
    ("fixed_price", "#f-fixed_price", "59.90", ("fixed_price", 5990), "¥40.10", "¥59.90"),
    ("service", "#f-nominal_value", "5", ("nominal_value", 500), "¥5.00", "¥100.00"),
]


def test_bureau_admin_creates_and_publishes_an_offer_of_each_kind(
    live_app: LiveApp, open_desk: Any, admin_key: str
) -> None:
    partner = live_app.run(lambda conn: make_partner(conn, name=unique("餐饮商会")))
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_admin"))
    for kind, selector, typed, (field, stored), discount, payable in KINDS:
        page.goto("/console/offers/new")
        page.select_option("#f-partner_id", partner)
        title = unique(kind)
        page.fill("#f-title", title)
        page.check(f'input[name="kind"][value="{kind}"]')
        expect(page.get_by_text(ui(f"kind_{kind}_rule"))).to_be_visible()
        page.fill(selector, typed)
        page.fill("#f-min_purchase", "10")
        page.fill("#f-holder_limit_count", "2")
        page.fill("#f-ends_on", "2030-12-31")
        page.check('input[name="eligible_categories"][value="veteran"]')
        page.fill("#sample", "100")
        if kind == "service":
            expected = ui("preview_service", value=discount, payable=payable)
        else:
            expected = ui("preview_money", purchase="¥100.00", discount=discount, payable=payable)
        expect(page.locator("#sample-result")).to_have_text(expected)
        page.fill("#sample", "9.99")
        expect(page.locator("#sample-result")).to_have_text(
            ui("preview_below_min", amount="¥10.00")
        )
        page.get_by_role("button", name=ui("offer_create")).click()
        expect(page.locator("#offer-status")).to_have_text(ui("status_draft"))
        page.get_by_role("button", name=ui("offer_to_active")).click()
        expect(page.locator("#offer-status")).to_have_text(ui("status_active"))
        offer_id = page.url.rsplit("/", 1)[1]
        status, offer = call(live_app, "GET", f"/v1/offers/{offer_id}", token=admin_key)
        assert status == 200
        assert (offer["kind"], offer[field], offer["status"]) == (kind, stored, "active")
        assert offer["min_purchase"] == 1000
        assert offer["holder_limit"] == {"count": 2, "period": "month"}
        assert offer["eligible_categories"] == ["veteran"]
        # Valid through 31 Dec 2030 in the programme's time zone: ends at 00:00 on 1 Jan.
        assert offer["ends_at"].startswith("2030-12-31T16:00:00")


def test_offer_form_shows_the_api_field_errors_beside_their_fields(
    live_app: LiveApp, open_desk: Any
) -> None:
    partner = live_app.run(lambda conn: make_partner(conn))
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_admin"))
    page.goto("/console/offers/new")
    page.select_option("#f-partner_id", partner)
    page.fill("#f-title", "x" * 201)  # the API allows 200 characters
    page.evaluate("document.querySelector('#f-title').removeAttribute('maxlength')")
    page.fill("#f-title", "x" * 201)
    page.check('input[name="kind"][value="amount_off"]')
    page.fill("#f-amount_off", "12.345")  # a third decimal is refused before sending
    page.get_by_role("button", name=ui("offer_create")).click()
    expect(page.locator("#f-amount_off-error")).to_have_text(ui("too_precise_fen"))
    page.fill("#f-amount_off", "12.34")
    page.get_by_role("button", name=ui("offer_create")).click()
    expect(page.locator("#f-title-error")).to_be_visible()
    expect(page.locator("#f-title")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#offer-form .form-problem")).to_contain_text(
        MESSAGES["problems"]["validation_error"]["zh"]
    )


# -- holders ------------------------------------------------------------------------------


def test_bureau_admin_enrols_a_holder_and_imports_a_bad_then_a_good_csv(
    live_app: LiveApp, open_desk: Any
) -> None:
    page = open_desk()
    accept_dialogs(page)
    sign_in(page, staff(live_app, "bureau_admin"))
    page.get_by_role("link", name=ui("nav_holders")).click()
    page.get_by_role("link", name=ui("holder_enrol")).click()
    card = unique("YD").upper()
    page.fill("#f-card_number", card)
    page.fill("#f-display_name", "王建国")
    page.select_option("#f-category", "disabled_veteran")
    page.fill("#f-valid_until", "2030-12-31")
    page.fill("#f-pin", PIN)
    page.get_by_role("button", name=ui("holder_enrol")).click()
    expect(page.locator("#holder-status")).to_have_text(ui("status_active"))
    page.get_by_role("button", name=ui("holder_to_suspended")).click()
    expect(page.locator("#holder-status")).to_have_text(ui("status_suspended"))

    header = "card_number,category,display_name,region,valid_until,pin\n"
    bad = (
        header
        + f"{unique('YD')},veteran,张三,东城,2030-12-31,204816\nYD-X,nobody,李四,,2030-13-01,12\n"
    )
    page.goto("/console/holders/import")
    page.set_input_files(
        "#csv-file", {"name": "bad.csv", "mimeType": "text/csv", "buffer": bad.encode()}
    )
    page.get_by_role("button", name=ui("import_start")).click()
    errors = page.locator("#import-outcome tbody tr")
    expect(errors.first).to_be_visible()
    assert "3" in errors.first.locator("td").first.inner_text()  # the third line of the file
    assert {row.locator("td").nth(1).inner_text() for row in errors.all()} >= {"category"}

    # A file whose argon2id hashing takes seconds on every core the import uses (~25 ms
    # a row), so the job's progress is drawn while it runs, more than one chunk of rows
    # (flows.holder_imports.CHUNK_ROWS) at a time.
    rows = IMPORT_ROWS_PER_CORE * max(2, usable_cores())
    prefix = unique("YD").upper()
    cards = [f"{prefix}-{i:05d}" for i in range(rows)]
    good = header + "".join(
        f"{c},veteran,持证人{i},西城,2031-06-30,{300000 + i}\n" for i, c in enumerate(cards)
    )
    page.set_input_files(
        "#csv-file", {"name": "good.csv", "mimeType": "text/csv", "buffer": good.encode()}
    )
    page.get_by_role("button", name=ui("import_start")).click()
    bar = page.locator("#import-progress")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("max", str(rows))
    # Seen part-way: some rows done, the job not over (the bar stays when it is).
    seen = page.wait_for_function(
        """() => {
          if (document.getElementById("import-done")) return "done";
          const bar = document.getElementById("import-progress");
          return bar.value > 0 && bar.value < bar.max && "part-way";
        }""",
        timeout=120_000,
    )
    assert seen.json_value() == "part-way"
    page.screenshot(path=str(SHOTS / "zh-laptop-holders-import-progress.png"), full_page=True)
    expect(page.locator("#import-done")).to_have_text(
        ui("import_done", created=rows, updated=0), timeout=180_000
    )
    expect(page.locator("#import-progress-text")).to_have_text(
        ui("import_progress_text", done=rows, rows=rows)
    )
    page.goto(f"/console/holders?q={cards[0]}")
    expect(page.get_by_role("link", name=cards[0])).to_be_visible()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_csv_saved_as_gbk_is_refused_with_the_advice_to_save_it_as_csv_utf8(
    live_app: LiveApp, open_desk: Any, lang: str
) -> None:
    """The console sends the file as it is: a GBK file (Excel's "CSV" on Chinese
    Windows) is refused by the server with its advice, and no holder is created (never
    one named U+FFFD)."""
    page = open_desk(locale="zh-CN" if lang == "zh" else "en-US")
    sign_in(page, staff(live_app, "bureau_admin"), lang=lang)
    card = unique("GBK").upper()
    gbk = (
        "card_number,category,display_name,region,valid_until,pin\r\n"
        f"{card},veteran,王建国,东城街道,2030-12-31,204816\r\n"
    ).encode("gbk")
    page.goto("/console/holders/import")
    page.set_input_files("#csv-file", {"name": "持证人.csv", "mimeType": "text/csv", "buffer": gbk})
    page.get_by_role("button", name=ui("import_start", lang)).click()
    errors = page.locator("#import-outcome tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text('"CSV UTF-8"')
    expect(errors.first).to_contain_text("另存为" if lang == "zh" else "Save As")
    expect(page.locator("#import-outcome")).to_contain_text(ui("import_nothing_written", lang))
    page.screenshot(path=str(SHOTS / f"{lang}-laptop-holders-import-gbk.png"), full_page=True)
    stored = live_app.run(
        lambda conn: conn.fetchval(
            "SELECT count(*) FROM holders WHERE card_number = $1 OR display_name LIKE $2",
            card,
            "%\ufffd%",
        )
    )
    assert stored == 0


# -- redemptions, reports, audit ----------------------------------------------------------


@pytest.fixture(scope="module")
def shop(live_app: LiveApp) -> dict[str, str]:
    """An active partner with a 10 %-off offer and a till key."""

    async def arrange(conn: Any) -> dict[str, str]:
        partner = await make_partner(conn, name=unique("老字号饭庄"), category="catering")
        offer = await make_offer(conn, partner, title=unique("堂食九折"), percent_bp=1000)
        scanner = await make_key(conn, Role.SCANNER, partner)
        return {"partner": partner, "offer": offer, "scanner": scanner}

    return live_app.run(arrange)


def redeem_at_the_till(page: Any, scanner: str, token: str, purchase: str) -> None:
    """/scan as a till uses it: the key once, then what a USB scanner types, and Enter."""
    page.goto("/scan")
    page.fill("#key-input", scanner)
    page.press("#key-input", "Enter")
    expect(page.locator("#till")).to_be_visible()
    page.fill("#code", token)
    page.press("#code", "Enter")
    expect(page.locator("#amount")).to_be_focused()
    page.keyboard.type(purchase)
    page.keyboard.press("Enter")
    expect(page.locator("#confirm")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#outcome")).to_contain_text(ui("redeemed"))


def test_a_redemption_made_at_a_till_is_found_by_its_till_and_reversed_with_a_reason(
    live_app: LiveApp, open_desk: Any, admin_key: str
) -> None:
    partner = live_app.run(lambda conn: make_partner(conn, name=unique("老字号饭庄")))
    offer = live_app.run(lambda conn: make_offer(conn, partner, title=unique("堂食九折")))
    tills = {}
    for label in ("一号收银台", "二号收银台"):
        status, key = call(
            live_app,
            "POST",
            f"/v1/partners/{partner}/keys",
            {"role": "scanner", "label": label},
            admin_key,
        )
        assert status == 201, key
        tills[label] = key
    first, second = tills["一号收银台"], tills["二号收银台"]
    # One use at till 1 through /scan, one at till 2 straight through the API.
    redeem_at_the_till(
        open_desk(viewport={"width": 1024, "height": 768}),
        first["key"],
        claimed_token(live_app, offer),
        "128.00",
    )
    redeem_through_the_api(live_app, offer, second["key"], 5000, unique("R"))

    page = open_desk()
    sign_in(page, staff(live_app, "partner_manager", partner))
    page.get_by_role("link", name=ui("nav_redemptions")).click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="¥128.00")).to_contain_text("一号收银台")
    expect(rows.filter(has_text="¥50.00")).to_contain_text("二号收银台")
    page.select_option("#f-key_id", first["id"])
    page.get_by_role("button", name=ui("apply_filters")).click()
    expect(page).to_have_url(re.compile(f"key_id={first['id']}"))
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_contain_text("一号收银台")
    expect(row).to_contain_text("¥128.00")
    expect(row).to_contain_text("¥12.80")
    page.reload()
    expect(page.locator("#f-key_id")).to_have_value(first["id"])
    expect(rows).to_have_count(1)
    page.screenshot(path=str(SHOTS / "zh-laptop-partner_manager-redemptions-by-till.png"))

    # A /scan redemption has no receipt number: its button is named by the redemption id.
    row.get_by_role("button", name=re.compile("^" + re.escape(ui("reverse")) + " ")).click()
    row.get_by_role("button", name=ui("reverse_confirm")).click()
    expect(row.locator(".field-error")).to_have_text(ui("reverse_reason_required"))
    row.get_by_label(ui("reverse_reason")).fill("顾客退货")
    row.get_by_role("button", name=ui("reverse_confirm")).click()
    expect(rows.first).to_contain_text(ui("status_reversed"))
    # The row says why and by whom (the manager, by name), as the audit log does.
    expect(rows.first).to_contain_text("顾客退货")
    manager_name = live_app.run(
        lambda conn: conn.fetchval(
            "SELECT display_name FROM staff_accounts WHERE partner_id = $1", partner
        )
    )
    expect(rows.first).to_contain_text(manager_name)
    reversed_by = live_app.run(
        lambda conn: conn.fetch(
            "SELECT r.scanner_key_id, x.reason FROM redemptions r "
            "JOIN reversals x ON x.redemption_id = r.id WHERE r.partner_id = $1",
            partner,
        )
    )
    assert [tuple(r) for r in reversed_by] == [(first["id"], "顾客退货")]

    page.get_by_role("button", name=ui("other_language")).click()
    expect(page.locator("#f-key_id")).to_have_value(first["id"])
    expect(rows.first).to_contain_text(ui("status_reversed", "en"))
    page.screenshot(path=str(SHOTS / "en-laptop-partner_manager-redemptions-by-till.png"))


def test_report_downloads_carry_the_totals_the_api_reports(
    live_app: LiveApp, open_desk: Any, shop: dict[str, str], admin_key: str
) -> None:
    for amount in (5000, 3333):
        redeem_through_the_api(live_app, shop["offer"], shop["scanner"], amount, unique("R"))
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_admin"))
    page.goto(f"/console/reports?group_by=partner,month&partner_id={shop['partner']}")
    _, report = call(
        live_app,
        "GET",
        f"/v1/reports/discounts?group_by=partner,month&partner_id={shop['partner']}",
        token=admin_key,
    )
    totals = report["totals"]
    shown = page.locator('#report-totals [data-figure="discount_total"] dd')
    expect(shown).to_have_text(yuan(totals["discount_total"]))

    with page.expect_download() as download:
        page.click("#download-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    column = header.index("discount_total")
    body = [r for r in rows[1:] if r and r[0] and not r[0].lower().startswith("total")]
    assert (
        sum(int(r[column]) for r in body if r[column].lstrip("-").isdigit())
        == totals["discount_total"]
    )

    with page.expect_download() as download:
        page.click("#download-xlsx")
    workbook = io.BytesIO(Path(download.value.path()).read_bytes())
    sheet = openpyxl.load_workbook(workbook, read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    column = list(values[0]).index("discount_total")
    numbers = [row[column] for row in values[1:] if isinstance(row[column], int | float)]
    assert totals["discount_total"] in (sum(numbers), sum(numbers) / 2)


def test_audit_log_names_the_staff_member_who_changed_a_partner(
    live_app: LiveApp, open_desk: Any
) -> None:
    admin = staff(live_app, "bureau_admin", name=unique("审计对象"))
    page = open_desk()
    sign_in(page, admin)
    page.goto("/console/partners/new")
    page.fill("#f-name", unique("零售店"))
    page.get_by_role("button", name=ui("partner_enrol")).click()
    expect(page.locator("#partner-status")).to_be_visible()
    partner_id = page.url.rsplit("/", 1)[1]
    page.goto(f"/console/audit?entity=partner&entity_id={partner_id}")
    expect(page.locator("#f-entity_id")).to_have_value(partner_id)
    # The actor as the API names it: a staff member, by name and id.
    first = page.locator("tbody tr").first
    expect(first).to_contain_text(admin.display_name)
    expect(first).to_contain_text(admin.id)
    expect(first).to_contain_text(ui("actor_staff"))


def yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def test_dashboards_show_the_figures_the_api_reports(
    live_app: LiveApp, open_desk: Any, shop: dict[str, str], admin_key: str
) -> None:
    redeem_through_the_api(live_app, shop["offer"], shop["scanner"], 4321, unique("R"))
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_admin"))
    _, summary = call(live_app, "GET", "/v1/reports/summary", token=admin_key)
    figures = page.locator("dl.figures")
    for name, value in (
        ("partners_enrolled", str(summary["partners"]["enrolled"])),
        ("holders", str(summary["holders"])),
        ("vouchers_issued", str(summary["vouchers_issued"])),
        ("redemptions", str(summary["redemptions"])),
        ("discount_total", yuan(summary["discount_total"])),
    ):
        expect(figures.locator(f'[data-figure="{name}"] dd')).to_have_text(value)
    expect(page.locator("svg.chart")).to_have_count(2)

    manager = open_desk()
    sign_in(manager, staff(live_app, "partner_manager", shop["partner"]))
    _, report = call(
        live_app,
        "GET",
        f"/v1/reports/discounts?group_by=offer&partner_id={shop['partner']}",
        token=admin_key,
    )
    shown = manager.locator('dl.figures [data-figure="discount_total"] dd')
    expect(shown).to_have_text(yuan(report["totals"]["discount_total"]))
    by_offer = manager.locator("svg.chart desc").nth(1)
    expect(by_offer).to_contain_text(yuan(report["rows"][0]["discount_total"]))


# -- partner applications --------------------------------------------------------------


def apply_to_join(live_app: LiveApp, name: str) -> str:
    """A firm applies through the public API, as /join does: the application's id."""
    digits = str(uuid.uuid4().int)[:8]
    status, submitted = call(
        live_app,
        "POST",
        "/v1/partner-applications",
        {
            "name": name,
            "category": "catering",
            "contact_name": "王芳",
            "contact_phone": f"139{digits}",
            "contact_email": f"owner-{digits}@shop.example",
            "address": "东城区和平里大街 8 号",
            "region": "东城街道",
            "offer_idea": "堂食九折，最多减 50 元",
            "agree_to_terms": True,
        },
    )
    assert status == 201, submitted
    return str(submitted["id"])


def test_bureau_admin_approves_one_application_and_rejects_another_from_the_dashboard(
    live_app: LiveApp, open_desk: Any, admin_key: str
) -> None:
    approved_name, rejected_name = unique("老兵饭店"), unique("拥军超市")
    approved, rejected = (apply_to_join(live_app, name) for name in (approved_name, rejected_name))
    _, waiting = call(
        live_app, "GET", "/v1/partner-applications?status=submitted&limit=200", token=admin_key
    )
    page = open_desk()
    accept_dialogs(page)
    sign_in(page, staff(live_app, "bureau_admin"))
    count = page.locator('dl.figures [data-figure="applications_waiting"] dd a')
    expect(count).to_have_text(str(len(waiting["items"])))
    count.click()
    expect(page.locator("#view-title")).to_have_text(ui("nav_applications"))
    expect(page.get_by_role("link", name=approved_name)).to_be_visible()
    page.get_by_role("link", name=rejected_name).click()
    page.fill("#f-reason", "本区已有同类商户，暂不增加")
    page.get_by_role("button", name=ui("application_reject")).click()
    expect(page.locator("#application-status")).to_have_text(ui("status_rejected"))
    _, stored = call(live_app, "GET", f"/v1/partner-applications/{rejected}", token=admin_key)
    assert stored["status"] == "rejected"
    assert stored["rejection_reason"] == "本区已有同类商户，暂不增加"

    page.goto(f"/console/applications/{approved}")
    page.get_by_role("button", name=ui("application_approve")).click()
    expect(page.locator("#application-status")).to_have_text(ui("status_approved"))
    expect(page.locator("#invite-url")).to_have_value(re.compile(r"/console/setup\?token="))
    _, stored = call(live_app, "GET", f"/v1/partner-applications/{approved}", token=admin_key)
    assert stored["status"] == "approved" and stored["partner_id"]
    page.get_by_role("link", name=approved_name).click()
    expect(page.locator("#partner-status")).to_have_text(ui("status_active"))
    # A decided application offers no second decision; the auditor reads but never decides.
    page.goto(f"/console/applications/{approved}")
    expect(page.get_by_role("button", name=ui("application_approve"))).to_have_count(0)
    auditor = open_desk()
    sign_in(auditor, staff(live_app, "bureau_auditor"))
    auditor.goto(f"/console/applications/{rejected}")
    expect(auditor.locator("#application-status")).to_have_text(ui("status_rejected"))
    expect(auditor.get_by_role("button", name=ui("application_reject"))).to_have_count(0)


# -- staff --------------------------------------------------------------------------------


def test_bureau_admin_invites_a_colleague_who_sets_a_password_in_another_browser(
    live_app: LiveApp, open_desk: Any
) -> None:
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_admin"))
    page.get_by_role("link", name=ui("nav_staff")).click()
    expect(page.locator("#invite-form")).to_be_visible()
    email = f"{unique('invitee')}@bureau.example"
    page.fill("#f-email", email)
    page.fill("#f-display_name", "新同事")
    page.select_option("#f-role", "bureau_auditor")
    page.get_by_role("button", name=ui("staff_invite")).click()
    link = page.locator("#invite-url").input_value()
    assert "/console/setup?token=" in link
    expect(page.get_by_role("cell", name=email, exact=True)).to_be_visible()

    invitee = open_desk(locale="en-US")
    invitee.goto(link)
    new_password = "violet-heron-carries-19-lanterns"
    invitee.fill("#f-password", new_password)
    invitee.fill("#f-password_again", new_password)
    invitee.get_by_role("button", name=ui("setup_save", "en")).click()
    expect(invitee.get_by_text(ui("setup_done", "en"))).to_be_visible()
    invitee.get_by_role("link", name=ui("go_sign_in", "en")).click()
    invitee.fill("#f-email", email)
    invitee.fill("#f-password", new_password)
    invitee.get_by_role("button", name=ui("sign_in", "en")).click()
    expect(invitee.locator("#who")).to_contain_text("新同事")
    assert ui("nav_holders", "en") not in nav_names(invitee)

    # The admin disables the new account: it is offered "enable" from then on.
    accept_dialogs(page)
    page.reload()
    row = page.locator("tbody tr", has_text=email)
    row.get_by_role("button", name=ui("staff_disable") + " " + email).click()
    expect(page.locator("tbody tr", has_text=email)).to_contain_text(ui("status_disabled"))


# -- what each role sees ------------------------------------------------------------------


def test_partner_manager_sees_only_its_own_partner(live_app: LiveApp, open_desk: Any) -> None:
    async def arrange(conn: Any) -> dict[str, str]:
        mine = await make_partner(conn, name=unique("本店"))
        other = await make_partner(conn, name=unique("别家"))
        return {
            "mine": mine,
            "other": other,
            "my_offer": await make_offer(conn, mine, title=unique("本店优惠")),
            "other_offer": await make_offer(conn, other, title=unique("别家优惠")),
        }

    ids = live_app.run(arrange)
    page = open_desk()
    sign_in(page, staff(live_app, "partner_manager", ids["mine"]))
    assert nav_names(page) == [
        ui(k)
        for k in (
            "nav_dashboard",
            "nav_partner",
            "nav_offers",
            "nav_redemptions",
            "nav_reports",
            "nav_account",
        )
    ]
    page.get_by_role("link", name=ui("nav_offers")).click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).not_to_contain_text("别家")
    page.goto(f"/console/partners/{ids['other']}")
    expect(page).to_have_url(f"{live_app.url}/console/partners/{ids['mine']}")
    page.goto(f"/console/offers/{ids['other_offer']}")
    expect(page.locator(".problem")).to_be_visible()
    page.goto("/console/holders")
    expect(page.locator("#view-title")).to_have_text(ui("not_offered_title"))


def test_bureau_auditor_sees_no_holder_data(live_app: LiveApp, open_desk: Any) -> None:
    card, name = unique("AUD").upper(), unique("审计看不到")
    holder = live_app.run(lambda conn: make_holder(conn, card_number=card, display_name=name))
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_auditor"))
    assert ui("nav_holders") not in nav_names(page)
    assert ui("nav_staff") not in nav_names(page)
    page.goto("/console/holders")
    expect(page.locator("#view-title")).to_have_text(ui("not_offered_title"))
    expect(page.locator("table")).to_have_count(0)
    # The holder's audit event is there, its personal fields withheld in words.
    page.goto(f"/console/audit?entity=holder&entity_id={holder}")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text(ui("audit_withheld"))
    assert card not in page.content() and name not in page.content()


def test_the_ledger_view_shows_the_checkpoint_and_prints_the_signed_statement(
    live_app: LiveApp, open_desk: Any, shop: dict[str, str], admin_key: str
) -> None:
    redeem_through_the_api(live_app, shop["offer"], shop["scanner"], 12345, unique("R"))
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_auditor"))
    assert ui("nav_ledger") in nav_names(page)
    deadline = time.monotonic() + 10
    while True:  # the log takes the redemption within seconds
        page.goto("/console/ledger")
        if page.locator("#checkpoint dl, dl#checkpoint").count():
            break
        assert time.monotonic() < deadline, "no checkpoint was shown"
        time.sleep(0.5)
    expect(page.locator("#checkpoint")).to_contain_text(ui("ledger_root"))
    page.get_by_role("button", name=ui("stmt_prepare")).click()
    statement = page.locator("#statement")
    expect(statement).to_be_visible()
    year = time.gmtime().tm_year
    status, summary = call(
        live_app, "GET", f"/v1/reports/summary?from={year}-01-01", None, admin_key
    )
    assert status == 200
    total = f"¥{summary['discount_total'] / 100:,.2f}"
    expect(statement.locator('[data-figure="stmt_discount_total"] dd')).to_have_text(total)
    expect(statement).to_contain_text(ui("stmt_title"))
    # The QR is drawn, and the digest printed is the downloaded statement's own.
    assert page.evaluate("document.querySelector('#statement img').naturalWidth") > 0
    with page.expect_download() as download:
        page.get_by_role("link", name=ui("stmt_download")).click()
    assert download.value.suggested_filename == f"youdai-statement-{year}.json"
    downloaded = json.loads(Path(download.value.path()).read_text())
    digest = hashlib.sha256(downloaded["statement"].encode()).hexdigest()
    expect(page.locator("#statement-digest")).to_have_text(digest)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(SHOTS / "zh-laptop-bureau_auditor-ledger-statement.png"), full_page=True
    )
    page.emulate_media(media="print")
    expect(page.locator("#nav")).to_be_hidden()
    page.screenshot(path=str(SHOTS / "zh-print-ledger-statement.png"), full_page=True)
    page.emulate_media(media="screen")
    # In English the console's words change; the statement stays in Chinese.
    page.get_by_role("button", name=ui("other_language")).click()
    expect(page.locator("#view-title")).to_have_text(ui("nav_ledger", "en"))
    expect(page.locator("#statement")).to_contain_text("优待总额声明")


# -- every view: screenshots, axe-core, both sizes ----------------------------------------


@pytest.fixture(scope="module")
def axe_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """axe-core from the npm registry, into a folder of this run (never into the package)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is missing: axe-core comes from the npm registry")
    folder = tmp_path_factory.mktemp("axe")
    done = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(folder),
            "--no-save",
            "--no-audit",
            "--no-fund",
            "axe-core@4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"npm could not install axe-core: {done.stderr[-300:]}")
    return (folder / "node_modules" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


def serious_violations(page: Any) -> list[str]:
    found = page.evaluate(
        """async () => {
          const result = await window.axe.run(document, {resultTypes: ['violations']});
          return result.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', '));
        }"""
    )
    return list(found)


def test_every_view_in_both_languages_at_both_sizes_has_no_serious_axe_violation(
    live_app: LiveApp, browser: Any, console: Console, shop: dict[str, str], axe_source: str
) -> None:
    redeem_through_the_api(live_app, shop["offer"], shop["scanner"], 8800, unique("R"))
    admin = staff(live_app, "bureau_admin")
    manager = staff(live_app, "partner_manager", shop["partner"])
    card = unique("YD").upper()
    holder = live_app.run(lambda conn: make_holder(conn, card_number=card, pin=PIN))
    application = apply_to_join(live_app, unique("拥军书店"))
    views = {
        admin: [
            "",
            "partners",
            f"partners/{shop['partner']}",
            "partners/new",
            "offers",
            f"offers/{shop['offer']}",
            "offers/new",
            "holders",
            f"holders/{holder}",
            "holders/new",
            "holders/import",
            "redemptions",
            f"redemptions?partner_id={shop['partner']}",  # its tills to filter by
            "reports?group_by=partner,month",
            "audit",
            "ledger",
            f"ledger?year={time.gmtime().tm_year}",
            "staff",
            "applications",
            f"applications/{application}",
            "account",
        ],
        manager: ["", f"partners/{shop['partner']}", "offers", "redemptions", "reports"],
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for lang, locale in (("zh", "zh-CN"), ("en", "en-US")):
        for size, viewport in (("laptop", LAPTOP), ("tablet", TABLET)):
            context = browser.new_context(base_url=live_app.url, viewport=viewport, locale=locale)
            context.set_default_timeout(15_000)
            context.add_init_script(axe_source)
            page = console.listen(context.new_page())
            for anonymous in ("", "setup?token=unknown"):
                page.goto("/console/" + anonymous)
                expect(page.locator("#view-title")).to_be_visible()
                name = anonymous.split("?")[0] or "sign-in"
                page.screenshot(path=str(SHOTS / f"{lang}-{size}-{name}.png"), full_page=True)
                problems += [f"{lang} {size} {name}: {v}" for v in serious_violations(page)]
            for account, paths in views.items():
                sign_in(page, account, lang=lang)
                for path in paths:
                    page.goto("/console/" + path)
                    expect(page.locator("#view-title")).to_be_visible()
                    page.wait_for_function("() => !document.querySelector('#view[aria-busy]')")
                    assert page.evaluate("document.documentElement.lang") == (
                        "zh-CN" if lang == "zh" else "en"
                    )
                    # Usable at this size: nothing but tables scrolls sideways.
                    overflow = page.evaluate(
                        "document.documentElement.scrollWidth - window.innerWidth"
                    )
                    assert overflow <= 0, f"{lang} {size} /{path} is {overflow}px too wide"
                    view = path.split("?")[0] or "dashboard"
                    if "partner_id=" in path:
                        view += "-of-partner"
                    name = (account.role + "-" + view).replace("/", "-")
                    name = name.replace(shop["partner"], "detail").replace(shop["offer"], "detail")
                    name = name.replace(holder, "detail").replace(application, "detail")
                    page.screenshot(path=str(SHOTS / f"{lang}-{size}-{name}.png"), full_page=True)
                    problems += [f"{lang} {size} {name}: {v}" for v in serious_violations(page)]
                page.get_by_role("button", name=ui("sign_out", lang)).click()
                expect(page.locator("#f-email")).to_be_visible()
            context.close()
    assert not problems, "\n".join(problems)


def test_the_language_choice_is_remembered(live_app: LiveApp, open_desk: Any) -> None:
    page = open_desk()
    page.goto("/console")
    expect(page.locator("#view-title")).to_have_text(ui("sign_in_title"))
    page.get_by_role("button", name=ui("other_language")).click()
    expect(page.locator("#view-title")).to_have_text(ui("sign_in_title", "en"))
    page.reload()
    expect(page.locator("#view-title")).to_have_text(ui("sign_in_title", "en"))
    assert page.evaluate("document.documentElement.lang") == "en"


# -- first load -----------------------------------------------------------------------------


def test_first_load_is_light_and_the_sign_in_form_is_soon_usable(
    live_app: LiveApp, browser: Any
) -> None:
    """Bytes over the wire for a first visit (empty cache) up to the signed-in dashboard,
    and the time from navigation to a sign-in form that takes input, on loopback; written
    to tests/output/console-load.json."""
    account = staff(live_app, "bureau_admin")
    timings: list[float] = []
    weight = 0
    for _ in range(5):
        context = browser.new_context(base_url=live_app.url, viewport=LAPTOP, locale="zh-CN")
        page = context.new_page()
        sizes: list[int] = []
        page.on(
            "requestfinished",
            lambda request, sizes=sizes: sizes.append(request.sizes()["responseBodySize"]),
        )
        start = time.perf_counter()
        page.goto("/console", wait_until="commit")
        page.locator("#f-email").fill(account.email)
        timings.append(time.perf_counter() - start)
        page.fill("#f-password", STAFF_PASSWORD)
        page.get_by_role("button", name=ui("sign_in")).click()
        expect(page.locator("svg.chart")).to_have_count(2)
        page.wait_for_load_state("networkidle")
        weight = sum(sizes)
        context.close()
    timings.sort()
    figures = {"first_load_bytes": weight, "sign_in_usable_median_s": timings[2], "runs_s": timings}
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "console-load.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(figures)
    # Signed in, the dashboard drawn: page, modules, style sheet, texts and the API's answers.
    assert weight < 150_000
    # The goal is < 1 s on loopback (see console-load.json); a machine shared by a test
    # run in parallel is slower, so this guards against a regression, not the goal.
    assert timings[2] < 3.0


# -- issue 32: staff roles, holder corrections, offer hints, till filter, audit ------------


def test_a_role_change_asks_first_and_says_it_was_done(live_app: LiveApp, open_desk: Any) -> None:
    colleague = staff(live_app, "bureau_auditor", name=unique("审计员"))
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_admin"))
    page.get_by_role("link", name=ui("nav_staff")).click()
    headers = page.locator("thead th").all_inner_texts()
    assert "最近登录" not in headers  # no column that is always empty
    role = page.get_by_label(ui("staff_change_role_of", name=colleague.email))
    asked: list[str] = []

    def answer(dialog: Any, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    role.select_option("bureau_admin")
    expect(role).to_have_value("bureau_auditor")  # cancelled: nothing changed
    stored = "SELECT role FROM staff_accounts WHERE id = $1"
    assert live_app.run(lambda conn: conn.fetchval(stored, colleague.id)) == "bureau_auditor"
    assert asked and colleague.display_name in asked[0] and ui("role_bureau_admin") in asked[0]

    page.once("dialog", lambda dialog: answer(dialog, True))
    page.get_by_label(ui("staff_change_role_of", name=colleague.email)).select_option(
        "bureau_admin"
    )
    expect(page.locator("#staff-done")).to_have_text(
        ui("role_changed", name=colleague.display_name, role=ui("role_bureau_admin"))
    )
    assert live_app.run(lambda conn: conn.fetchval(stored, colleague.id)) == "bureau_admin"
    expect(page.get_by_label(ui("staff_change_role_of", name=colleague.email))).to_have_value(
        "bureau_admin"
    )
    page.screenshot(path=str(SHOTS / "zh-laptop-staff-role-changed.png"), full_page=True)


def test_bureau_admin_resets_a_pin_renews_a_card_and_corrects_name_and_region(
    live_app: LiveApp, open_desk: Any
) -> None:
    card = unique("YD").upper()
    holder = live_app.run(
        lambda conn: make_holder(
            conn,
            card_number=card,
            pin=PIN,
            display_name="王建囯",
            region="东城",
            valid_until="2027-06-30",
        )
    )
    for _ in range(5):  # the holder forgot the PIN: the card is locked
        call(live_app, "POST", "/v1/holder-sessions", {"card_number": card, "pin": "999999"})
    status, _ = call(live_app, "POST", "/v1/holder-sessions", {"card_number": card, "pin": PIN})
    assert status == 429

    page = open_desk()
    sign_in(page, staff(live_app, "bureau_admin"))
    page.goto(f"/console/holders/{holder}")
    edit = page.locator("#holder-edit-form")
    edit.get_by_label(ui("display_name")).fill("王建国")
    edit.get_by_label(ui("region")).fill("西城街道")
    edit.get_by_label(ui("valid_until")).fill("2032-12-31")
    edit.get_by_role("button", name=ui("save")).click()
    expect(page.locator("#holder-edit-form .form-problem")).to_have_text(ui("holder_saved"))
    expect(page.locator("#view-title")).to_have_text("王建国")
    expect(page.locator("dl.facts")).to_contain_text("2032-12-31")
    row = live_app.run(
        lambda conn: conn.fetchrow(
            "SELECT display_name, region, valid_until::text AS valid_until FROM holders "
            "WHERE id = $1",
            holder,
        )
    )
    assert dict(row) == {
        "display_name": "王建国",
        "region": "西城街道",
        "valid_until": "2032-12-31",
    }

    reset = page.locator("#pin-reset-form")
    reset.get_by_label(ui("pin_new")).fill("135790")
    reset.get_by_role("button", name=ui("pin_reset")).click()
    expect(reset.locator(".form-problem")).to_have_text(ui("pin_reset_done"))
    page.screenshot(path=str(SHOTS / "zh-laptop-holder-corrected.png"), full_page=True)
    # The lockout is lifted: the holder signs in with the new PIN at once, not the old.
    status, _ = call(live_app, "POST", "/v1/holder-sessions", {"card_number": card, "pin": PIN})
    assert status == 401
    status, session = call(
        live_app, "POST", "/v1/holder-sessions", {"card_number": card, "pin": "135790"}
    )
    assert status == 201, session


def test_the_offer_form_states_the_real_default_of_voucher_valid_days(
    live_app: LiveApp, open_desk: Any
) -> None:
    from service.domain.vouchers import DEFAULT_VALID_DAYS

    for lang, locale in (("zh", "zh-CN"), ("en", "en-US")):
        page = open_desk(locale=locale)
        sign_in(page, staff(live_app, "bureau_admin"), lang=lang)
        page.goto("/console/offers/new")
        hint = page.locator("#f-voucher_valid_days-hint")
        expect(hint).to_contain_text(str(DEFAULT_VALID_DAYS))


def test_the_till_filter_fills_with_the_tills_of_the_partner_chosen(
    live_app: LiveApp, open_desk: Any, admin_key: str
) -> None:
    partner = live_app.run(lambda conn: make_partner(conn, name=unique("选择商户")))
    status, key = call(
        live_app,
        "POST",
        f"/v1/partners/{partner}/keys",
        {"role": "scanner", "label": "三号收银台"},
        admin_key,
    )
    assert status == 201, key
    page = open_desk()
    sign_in(page, staff(live_app, "bureau_admin"))
    page.goto("/console/redemptions")
    tills = page.locator("#f-key_id")
    expect(tills).to_be_disabled()
    page.select_option("#f-partner_id", partner)
    expect(tills).to_be_enabled()  # filled before the filters are applied
    expect(tills.locator("option")).to_have_text([ui("any"), "三号收银台"])
    tills.select_option(key["id"])
    page.get_by_role("button", name=ui("apply_filters")).click()
    expect(page).to_have_url(re.compile(f"key_id={key['id']}"))
    # The list is drawn again with the filters applied: choose on the new form, not on
    # the one it replaces (a change on the old form would be lost with it).
    page.wait_for_function("() => !document.querySelector('#view[aria-busy]')")
    expect(page.locator("#f-key_id")).to_have_value(key["id"])
    page.select_option("#f-partner_id", "")
    expect(page.locator("#f-key_id")).to_be_disabled()


@pytest.fixture(scope="module")
def tokyo_app(pg_server: TestServer) -> Iterator[LiveApp]:
    """A programme whose time zone is not Shanghai's (nor the browser's)."""
    with serving(pg_server, YOUDAI_TIMEZONE="Asia/Tokyo") as app:
        yield app


def test_the_audit_view_shows_yuan_and_the_programmes_time_zone_and_scrolls_by_keyboard(
    tokyo_app: LiveApp, open_desk: Any
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    app = tokyo_app
    partner = app.run(lambda conn: make_partner(conn, name=unique("预算商户")))
    offer = app.run(
        lambda conn: make_offer(conn, partner, title=unique("预算优惠"), budget=1234567)
    )
    key = app.run(lambda conn: make_key(conn, Role.ADMIN))
    status, _ = call(app, "PATCH", f"/v1/offers/{offer}", {"budget": 2345678}, key)
    assert status == 200
    occurred = app.run(
        lambda conn: conn.fetchval(
            "SELECT occurred_at FROM audit_events WHERE entity_id = $1 AND action = 'offer.update'",
            offer,
        )
    )
    page = open_desk(app=app, timezone_id="America/Los_Angeles")
    sign_in(page, staff(app, "bureau_admin"))
    page.goto(f"/console/audit?entity=offer&entity_id={offer}")
    row = page.locator("tbody tr", has_text="offer.update")
    expect(row).to_contain_text("budget: ¥12,345.67 → ¥23,456.78")
    expect(row).to_contain_text(
        occurred.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M")
    )
    created = page.locator("tbody tr", has_text="offer.create")
    expect(created).to_contain_text("budget: — → ¥12,345.67")
    assert (
        datetime.now(ZoneInfo("Asia/Tokyo")).utcoffset()
        != datetime.now(ZoneInfo("America/Los_Angeles")).utcoffset()
    )
    # The table's scroll box is reached with Tab, and named.
    region = page.locator(".table-wrap")
    expect(region).to_have_attribute("tabindex", "0")
    expect(region).to_have_attribute("role", "region")
    expect(region).to_have_attribute("aria-label", ui("nav_audit"))
    page.get_by_role("button", name=ui("apply_filters")).focus()
    for _ in range(10):
        if page.evaluate("document.activeElement.classList.contains('table-wrap')"):
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('table-wrap')")
    page.screenshot(path=str(SHOTS / "zh-laptop-audit-yuan-tokyo.png"), full_page=True)
