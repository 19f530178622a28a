"""docs/pages.md as the people at the till and the holders on a phone need it: one test each.

axe-core comes from the npm registry for the test run only (into tests/output, never
shipped) and is evaluated in the page through the DevTools protocol, so the pages'
strict Content-Security-Policy stays as it is.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import zxingcpp
from PIL import Image

from service.config import load_settings
from service.domain.auth import Role
from tests.browser.conftest import HELP_PHONE, OUTPUT, LiveApp, problem, ui
from tests.helpers import make_holder, make_key, make_offer, make_partner, make_voucher, token_for

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is missing: pip install -e '.[test]'"
)
expect = sync_api.expect

PIN = "204816"
SETTINGS = load_settings({})


@pytest.fixture(scope="module")
def shop(live_app: LiveApp) -> dict[str, str]:
    """A restaurant with a service offer (¥5 priority), a priced offer (¥5 off from ¥20,
    three uses) and a scanner key."""

    async def arrange(conn: Any) -> dict[str, str]:
        partner = await make_partner(conn, name="老兵饭店", category="catering")
        service = await make_offer(
            conn, partner, title="优先就餐", kind="service", nominal_value=500
        )
        priced = await make_offer(
            conn,
            partner,
            title="满20减5",
            kind="amount_off",
            amount_off=500,
            min_purchase=2000,
            uses_per_voucher=3,
        )
        scanner = await make_key(conn, Role.SCANNER, partner)
        return {"partner": partner, "service": service, "priced": priced, "scanner": scanner}

    return live_app.run(arrange)


_cards = iter(range(1, 10_000))


def holder(live_app: LiveApp) -> tuple[str, str]:
    card = f"YD-T18-{next(_cards):04d}"
    return card, live_app.run(lambda conn: make_holder(conn, card_number=card, pin=PIN))


def token(live_app: LiveApp, offer: str) -> str:
    _, holder_id = holder(live_app)

    async def mint(conn: Any) -> str:
        voucher = await make_voucher(conn, SETTINGS, holder_id, offer)
        return await token_for(conn, SETTINGS, voucher)

    return live_app.run(mint)


def redemptions(live_app: LiveApp, offer: str) -> int:
    return live_app.run(
        lambda conn: conn.fetchval("SELECT count(*) FROM redemptions WHERE offer_id = $1", offer)
    )


def open_till(page: Any, key: str) -> None:
    page.goto("/scan")
    page.fill("#key-input", key)
    page.press("#key-input", "Enter")
    expect(page.locator("#till")).to_be_visible()


def scan(page: Any, text: str) -> None:
    """A USB scanner: the text, then Enter (not counted as the cashier's keys)."""
    page.focus("#code")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def amount_asked(page: Any) -> None:
    """The till asks for the amount of a priced offer; the cashier types it then."""
    expect(page.locator("#outcome[data-kind=info]")).to_be_visible()
    expect(page.locator("#amount")).to_be_focused()


class Keys:
    """The cashier's key presses, counted."""

    def __init__(self, page: Any) -> None:
        self.page, self.count = page, 0

    def type(self, text: str) -> None:
        for char in text:
            self.press(char)

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.count += 1


def sign_in(page: Any, card: str, pin: str = PIN) -> None:
    page.goto("/wallet")
    page.fill("#card", card)
    page.fill("#pin", pin)
    page.press("#pin", "Enter")


def show_voucher(page: Any, card: str, title: str) -> None:
    sign_in(page, card)
    page.locator("#offers li", has_text=title).get_by_role("button", name=ui("claim")).click()
    expect(page.locator("#qr[data-state=shown]")).to_be_visible()


# --- axe-core -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def axe_source() -> str:
    folder = OUTPUT / "axe"
    script = folder / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is missing: axe-core cannot be installed for the test run")
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(folder), "--no-save", "--silent", "axe-core@4"],
            check=True,
            timeout=300,
        )
    return script.read_text(encoding="utf-8")


def serious_violations(page: Any, axe_source: str) -> list[str]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_nothing_serious_in_any_state_of_the_till(
    till: Any, live_app: LiveApp, shop: dict[str, str], axe_source: str
) -> None:
    states = {}
    till.goto("/scan")
    expect(till.locator("#key-input")).to_be_visible()
    states["key"] = serious_violations(till, axe_source)
    open_till(till, shop["scanner"])
    states["idle"] = serious_violations(till, axe_source)
    scan(till, token(live_app, shop["priced"]))
    amount_asked(till)
    states["amount asked"] = serious_violations(till, axe_source)
    till.keyboard.type("30")
    till.keyboard.press("Enter")
    expect(till.locator("#preview")).to_be_visible()
    states["preview"] = serious_violations(till, axe_source)
    till.keyboard.press("Enter")
    expect(till.locator("#outcome[data-kind=success]")).to_be_visible()
    expect(till.locator("#today-list li")).not_to_have_count(0)
    states["success"] = serious_violations(till, axe_source)
    scan(till, "not a voucher")
    expect(till.locator("#outcome[data-kind=problem]")).to_be_visible()
    states["refusal"] = serious_violations(till, axe_source)
    till.locator("#today-list button").first.click()
    states["reverse"] = serious_violations(till, axe_source)
    till.click("html")
    till.evaluate("document.documentElement.lang")
    assert states == {state: [] for state in states}


def test_axe_finds_nothing_serious_in_any_state_of_the_wallet(
    phone: Any, live_app: LiveApp, shop: dict[str, str], axe_source: str
) -> None:
    card, _ = holder(live_app)
    states = {}
    phone.goto("/wallet")
    expect(phone.locator("#card")).to_be_visible()
    states["sign in"] = serious_violations(phone, axe_source)
    sign_in(phone, card, pin="000000")
    expect(phone.locator("#sign-in-problem")).to_be_visible()
    states["wrong pin"] = serious_violations(phone, axe_source)
    phone.fill("#pin", PIN)
    phone.press("#pin", "Enter")
    expect(phone.locator("#offers li")).not_to_have_count(0)
    states["home"] = serious_violations(phone, axe_source)
    phone.locator("#offers li", has_text="优先就餐").get_by_role("button", name=ui("claim")).click()
    expect(phone.locator("#qr[data-state=shown]")).to_be_visible()
    expect(phone.locator("#barcode")).to_have_attribute("src", lambda_any())
    states["qr"] = serious_violations(phone, axe_source)
    phone.click("#text-size")
    states["large text"] = serious_violations(phone, axe_source)
    voucher = phone.evaluate("document.querySelector('#voucher-title').textContent")
    assert voucher
    live_app.run(
        lambda conn: conn.execute(
            "UPDATE vouchers SET uses_left = 0, status = 'used_up' "
            "WHERE holder_id = (SELECT id FROM holders WHERE card_number = $1)",
            card,
        )
    )
    expect(phone.locator("#voucher-done")).to_be_visible(timeout=15_000)
    states["used up"] = serious_violations(phone, axe_source)
    phone.click("#text-size")
    phone.get_by_role("button", name=ui("back")).click()
    used_up = phone.locator("#vouchers li.card-used_up")
    expect(used_up).to_be_visible()
    states["home with a used-up voucher"] = serious_violations(phone, axe_source)
    phone.screenshot(path=OUTPUT / "wallet-used-up-card.png", full_page=True)
    assert states == {state: [] for state in states}


def lambda_any() -> Any:
    import re

    return re.compile(r"^blob:")


# --- the till ------------------------------------------------------------------------------


def test_the_till_shows_whose_partner_and_till_its_key_is(till: Any, shop: dict[str, str]):
    open_till(till, shop["scanner"])
    expect(till.locator("#till-identity")).to_have_text(
        ui("till_identity", partner="老兵饭店", label="test scanner")
    )


def test_a_service_offer_is_redeemed_in_one_key_after_the_scan_and_adds_up(
    till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_till(till, shop["scanner"])
    before = redemptions(live_app, shop["service"])
    scan(till, token(live_app, shop["service"]))
    expect(till.locator("#preview")).to_be_visible()
    # Money that adds up: no minus line that is not taken off, the value counted.
    expect(till.locator("#preview-discount-row")).to_be_hidden()
    expect(till.locator("#preview-service")).to_have_text(ui("service_counted", value="¥5.00"))
    till.screenshot(path=OUTPUT / "scan-service-preview.png")
    keys = Keys(till)
    keys.press("Enter")
    expect(till.locator("#outcome[data-kind=success]")).to_be_visible()
    assert redemptions(live_app, shop["service"]) == before + 1
    assert keys.count <= 2, keys.count


def test_a_priced_offer_takes_the_amount_and_two_keys_after_the_scan(
    till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_till(till, shop["scanner"])
    before = redemptions(live_app, shop["priced"])
    scan(till, token(live_app, shop["priced"]))
    amount_asked(till)
    keys = Keys(till)
    keys.type("35")
    keys.press("Enter")
    expect(till.locator("#preview-payable")).to_have_text("¥30.00")
    keys.press("Enter")
    expect(till.locator("#outcome[data-kind=success]")).to_be_visible()
    assert redemptions(live_app, shop["priced"]) == before + 1
    assert keys.count - len("35") <= 2, keys.count


def test_a_second_redemption_within_two_minutes_asks_for_a_confirmation(
    till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_till(till, shop["scanner"])
    scanned = token(live_app, shop["priced"])
    for amount in ("30", "40"):
        scan(till, scanned)
        amount_asked(till)
        till.keyboard.type(amount)
        till.keyboard.press("Enter")
        expect(till.locator("#preview")).to_be_visible()
        if amount == "30":
            expect(till.locator("#preview-double")).to_be_hidden()
            till.keyboard.press("Enter")
            expect(till.locator("#outcome[data-kind=success]")).to_be_visible()
    expect(till.locator("#preview-double")).to_be_visible()
    count = redemptions(live_app, shop["priced"])
    till.keyboard.press("Enter")  # the first Enter only acknowledges the warning
    expect(till.locator("#confirm")).to_have_text(ui("confirm_redeem"))
    assert redemptions(live_app, shop["priced"]) == count
    till.keyboard.press("Enter")
    expect(till.locator("#outcome[data-kind=success]")).to_be_visible()
    assert redemptions(live_app, shop["priced"]) == count + 1


def test_a_purchase_below_the_minimum_is_told_the_minimum_spend(
    till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_till(till, shop["scanner"])
    scan(till, token(live_app, shop["priced"]))
    amount_asked(till)
    till.keyboard.type("12")
    till.keyboard.press("Enter")
    outcome = till.locator("#outcome")
    expect(outcome).to_contain_text(problem("below_min_purchase"))
    expect(outcome).to_contain_text(ui("next_min_purchase", amount="¥20.00"))
    expect(till.locator("#amount")).to_have_value("")
    expect(till.locator("#code")).to_have_value("")


def test_a_voucher_that_cannot_be_used_says_charge_the_full_price(
    till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_till(till, shop["scanner"])
    scanned = token(live_app, shop["service"])
    live_app.run(
        lambda conn: conn.execute(
            "UPDATE vouchers SET status = 'revoked' WHERE status = 'active' AND offer_id = $1",
            shop["service"],
        )
    )
    scan(till, scanned)
    expect(till.locator("#outcome")).to_contain_text(ui("next_full_price"))


def test_success_and_refusal_fill_the_whole_width_in_their_colour(
    till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_till(till, shop["scanner"])
    colours = {}
    for kind, text in (("success", token(live_app, shop["service"])), ("problem", "nonsense")):
        scan(till, text)
        if kind == "success":
            expect(till.locator("#preview")).to_be_visible()
            till.keyboard.press("Enter")
        box = till.locator(f"#outcome[data-kind={kind}]")
        expect(box).to_be_visible()
        width = box.evaluate("e => e.getBoundingClientRect().width")
        assert width >= till.viewport_size["width"] - 20
        colours[kind] = box.evaluate("e => getComputedStyle(e).backgroundColor")
        till.screenshot(path=OUTPUT / f"scan-{kind}.png")
    assert colours == {"success": "rgb(27, 94, 32)", "problem": "rgb(183, 28, 28)"}


def test_the_till_reverses_any_of_its_redemptions_of_today(
    till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_till(till, shop["scanner"])
    first, second = token(live_app, shop["service"]), token(live_app, shop["service"])
    for scanned in (first, second):
        scan(till, scanned)
        expect(till.locator("#preview")).to_be_visible()
        till.keyboard.press("Enter")
        expect(till.locator("#outcome[data-kind=success]")).to_be_visible()
    rows = till.locator("#today-list li")
    expect(rows.first).to_be_visible()
    count = rows.count()
    assert count >= 2
    rows.nth(1).get_by_role("button", name=ui("reverse_this")).click()  # not the last one
    till.keyboard.type("顾客取消")
    till.keyboard.press("Enter")
    expect(till.locator("#outcome")).to_contain_text(ui("reversed"))
    expect(rows.nth(1)).to_contain_text(ui("status_reversed"))
    expect(rows.nth(0).get_by_role("button", name=ui("reverse_this"))).to_be_visible()


def test_a_refusal_stays_until_the_next_scan_and_typing_does_not_replace_it(
    till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_till(till, shop["scanner"])
    scanned = token(live_app, shop["service"])
    live_app.run(
        lambda conn: conn.execute(
            "UPDATE vouchers SET status = 'revoked' WHERE status = 'active' AND offer_id = $1",
            shop["service"],
        )
    )
    scan(till, scanned)
    outcome = till.locator("#outcome[data-kind=problem]")
    expect(outcome).to_contain_text(problem("voucher_revoked"))
    refusal = outcome.text_content()
    # The cashier types: a wrong key, an amount, Enter, Enter in the amount field.
    till.keyboard.type("35")
    till.keyboard.press("Enter")
    till.focus("#amount")
    till.keyboard.type("abc")
    till.keyboard.press("Enter")
    till.focus("#code")
    till.keyboard.press("Enter")
    till.wait_for_timeout(1500)  # nothing else arrives a moment later either
    assert till.locator("#outcome").text_content() == refusal
    expect(till.locator("#outcome")).to_have_attribute("data-kind", "problem")
    expect(till.locator("#code")).to_be_focused()
    # The next scan replaces it.
    scan(till, token(live_app, shop["priced"]))
    amount_asked(till)
    expect(till.locator("#outcome")).not_to_contain_text(problem("voucher_revoked"))


def _clock(iso: str) -> str:
    """A redemption's time of day to the second, in the programme time zone."""
    return datetime.fromisoformat(iso).astimezone(SETTINGS.timezone).strftime("%H:%M:%S")


def test_todays_list_tells_entries_apart_by_the_second_and_the_receipt_reference(
    till: Any, live_app: LiveApp
) -> None:
    async def arrange(conn: Any) -> dict[str, str]:
        partner = await make_partner(conn, name="小票商店", category="retail")
        offer = await make_offer(conn, partner, title="到店礼遇", kind="service", nominal_value=300)
        return {"offer": offer, "scanner": await make_key(conn, Role.SCANNER, partner)}

    shop = live_app.run(arrange)
    open_till(till, shop["scanner"])
    for reference in ("R-20261206-0001", ""):
        scan(till, token(live_app, shop["offer"]))
        expect(till.locator("#preview")).to_be_visible()
        if reference:
            till.fill("#reference", reference)
        till.click("#confirm")
        expect(till.locator("#outcome[data-kind=success]")).to_be_visible()
        expect(till.locator("#reference")).to_have_value("")  # nothing carried over
    stored = live_app.run(
        lambda conn: conn.fetch(
            "SELECT reference, created_at FROM redemptions WHERE offer_id = $1 "
            "ORDER BY created_at DESC",
            shop["offer"],
        )
    )
    assert [r["reference"] for r in stored] == ["", "R-20261206-0001"]
    rows = till.locator("#today-list li")
    expect(rows).to_have_count(2)
    for row, redemption in zip(rows.all(), stored, strict=True):
        expect(row).to_contain_text(_clock(redemption["created_at"].isoformat()))
    expect(rows.nth(1)).to_contain_text(ui("today_reference", reference="R-20261206-0001"))
    expect(rows.nth(0)).not_to_contain_text("·")  # no receipt number, none shown
    till.screenshot(path=OUTPUT / "scan-today.png", full_page=True)


def test_the_reverse_buttons_of_a_narrow_till_keep_their_text_on_one_line(
    phone: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_till(phone, shop["scanner"])
    scan(phone, token(live_app, shop["service"]))
    expect(phone.locator("#preview")).to_be_visible()
    phone.click("#confirm")
    expect(phone.locator("#outcome[data-kind=success]")).to_be_visible()
    buttons = phone.locator("#today-list button")
    expect(buttons.first).to_be_visible()
    phone.screenshot(path=OUTPUT / "scan-today-360.png", full_page=True)
    for lang in ("zh", "en"):
        expect(buttons.first).to_have_text(ui("reverse_this", lang))
        lines = buttons.first.evaluate(
            """b => {
              const style = getComputedStyle(b);
              const size = parseFloat(style.fontSize);
              const normal = style.lineHeight === "normal";
              const line = normal ? 1.25 * size : parseFloat(style.lineHeight);
              const content = b.clientHeight - parseFloat(style.paddingTop)
                - parseFloat(style.paddingBottom);
              return content / line;
            }"""
        )
        assert lines < 1.5, f"{lang}: the button's text takes {lines:.1f} lines"
        if lang == "zh":
            phone.get_by_role("button", name=ui("other_language")).click()


# --- the wallet -----------------------------------------------------------------------------


def test_dates_are_the_last_valid_local_day_whatever_the_phones_time_zone(
    browser: Any, live_app: LiveApp, shop: dict[str, str], console: Any
) -> None:
    card, holder_id = holder(live_app)

    async def arrange(conn: Any) -> None:
        voucher = await make_voucher(conn, SETTINGS, holder_id, shop["priced"])
        # Ends at 00:00 on 2 January in Asia/Shanghai: valid through 1 January.
        await conn.execute(
            "UPDATE vouchers SET expires_at = '2027-01-02T00:00:00+08:00' WHERE id = $1", voucher
        )

    live_app.run(arrange)
    for zone in ("America/Los_Angeles", "Asia/Shanghai", "Pacific/Kiritimati"):
        context = browser.new_context(base_url=live_app.url, timezone_id=zone, locale="zh-CN")
        page = console.listen(context.new_page())
        sign_in(page, card)
        voucher = page.locator("#vouchers li", has_text="满20减5")
        expect(voucher).to_contain_text(ui("valid_through", date="2027-01-01"))
        context.close()


def test_the_wallet_shows_the_code_and_barcode_under_a_qr_that_scans_from_the_screen(
    phone: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    card, _ = holder(live_app)
    show_voucher(phone, card, "满20减5")
    expect(phone.locator("#barcode")).to_have_attribute("src", lambda_any())
    phone.wait_for_function("document.getElementById('barcode').complete")
    shown_code = phone.locator("#voucher-code").inner_text().replace(" ", "")
    assert len(shown_code) == 18 and shown_code.isdigit()
    phone.screenshot(path=OUTPUT / "wallet-code.png", full_page=True)
    # What a camera sees: a screenshot of the phone's screen, 360 px wide (2x pixels).
    qr = Image.open(io.BytesIO(phone.locator("#qr").screenshot())).convert("L")
    found = zxingcpp.read_barcode(qr, formats=zxingcpp.BarcodeFormat.QRCode)
    assert found is not None and found.text.count(".") == 2
    bars = Image.open(io.BytesIO(phone.locator("#barcode").screenshot())).convert("L")
    read = zxingcpp.read_barcode(bars, formats=zxingcpp.BarcodeFormat.Code128)
    assert read is not None and read.text == shown_code
    # The code shown is the QR's own minting: the till accepts it.
    assert phone.locator("#qr-caption").is_visible()


def test_the_wallet_keeps_the_screen_awake_while_a_qr_is_shown(
    phone: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    phone.add_init_script(
        """
        window.__locks = [];
        Object.defineProperty(navigator, "wakeLock", {value: {request: async (type) => {
            const lock = new EventTarget();
            lock.released = false;
            lock.release = async () => { lock.released = true; };
            window.__locks.push({type, lock});
            return lock;
        }}});
        """
    )
    card, _ = holder(live_app)
    show_voucher(phone, card, "满20减5")
    phone.wait_for_function("window.__locks.length > 0")
    assert phone.evaluate("window.__locks.map(l => l.type)") == ["screen"]
    phone.get_by_role("button", name=ui("back")).click()
    assert phone.evaluate("window.__locks[0].lock.released") is True


def test_the_wallet_tells_what_was_saved_and_never_a_qr_prompt_beside_an_error(
    phone: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    card, holder_id = holder(live_app)
    show_voucher(phone, card, "优先就餐")
    # The service's own words for the offer (service.domain.terms), not the page's.
    expect(phone.locator("#voucher-terms")).to_contain_text("优先服务（价值¥5）")
    live_app.run(
        lambda conn: conn.execute(
            "UPDATE vouchers SET status = 'revoked' WHERE holder_id = $1", holder_id
        )
    )
    expect(phone.locator("#voucher-status")).to_have_text(
        problem("voucher_revoked"), timeout=15_000
    )
    expect(phone.locator("#qr-caption")).to_be_hidden()
    expect(phone.locator("#code-box")).to_be_hidden()
    phone.screenshot(path=OUTPUT / "wallet-revoked.png", full_page=True)


def test_the_wallet_warns_before_the_last_pin_attempt(phone: Any, live_app: LiveApp) -> None:
    card, _ = holder(live_app)
    for attempt in range(1, 5):
        sign_in(phone, card, pin="111111")
        expect(phone.locator("#sign-in-problem")).to_be_visible()
        warning = phone.locator("#last-attempt")
        if attempt < 4:
            expect(warning).to_be_hidden()
    expect(warning).to_have_text(ui("last_attempt"))


def test_the_pin_attempt_that_locks_the_card_says_so_and_whom_to_call(
    phone: Any, live_app: LiveApp
) -> None:
    card, _ = holder(live_app)
    for _ in range(4):
        sign_in(phone, card, pin="111111")
        expect(phone.locator("#sign-in-problem")).to_have_text(ui("sign_in_wrong"))
    sign_in(phone, card, pin="111111")  # the fifth wrong PIN locks the card
    locked = ui("card_locked_call", minutes=15, phone=HELP_PHONE)
    expect(phone.locator("#sign-in-problem")).to_have_text(locked)
    expect(phone.locator("#last-attempt")).to_be_hidden()
    phone.screenshot(path=OUTPUT / "wallet-locked.png", full_page=True)
    sign_in(phone, card)  # the right PIN while locked: the same words
    expect(phone.locator("#sign-in-problem")).to_have_text(locked)


def test_a_voucher_of_a_paused_offer_says_why_in_words_and_shows_no_qr(
    phone: Any, live_app: LiveApp
) -> None:
    from service.flows import offers as offers_flow

    card, holder_id = holder(live_app)

    async def arrange(conn: Any) -> str:
        partner = await make_partner(conn, name="暂停中的商户", category="retail")
        offer = await make_offer(conn, partner, title="暂停的优惠")
        await make_voucher(conn, SETTINGS, holder_id, offer)
        await offers_flow.change(conn, None, offer, {"status": "paused"})
        return offer

    live_app.run(arrange)
    sign_in(phone, card)
    voucher = phone.locator("#vouchers li", has_text="暂停的优惠")
    voucher.get_by_role("button", name=ui("show_qr")).click()
    expect(phone.locator("#voucher-status")).to_have_text(ui("blocked_offer_inactive"))
    expect(phone.locator("#qr")).to_be_hidden()
    expect(phone.locator("#qr-caption")).to_be_hidden()
    expect(phone.locator("#code-box")).to_be_hidden()
    expect(phone.locator("#refresh")).to_be_hidden()
    phone.screenshot(path=OUTPUT / "wallet-offer-paused.png", full_page=True)
    phone.get_by_role("button", name=ui("other_language")).click()
    expect(phone.locator("#voucher-status")).to_have_text(ui("blocked_offer_inactive", "en"))
    phone.screenshot(path=OUTPUT / "wallet-offer-paused-en.png", full_page=True)


def test_the_wallet_says_whom_to_call(phone: Any) -> None:
    phone.goto("/wallet")
    link = phone.get_by_role("link", name=HELP_PHONE)
    expect(link).to_be_visible()
    assert link.get_attribute("href") == "tel:01065512345"


def test_large_text_mode_has_20_px_text_and_48_px_targets_and_survives_a_reload(
    phone: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    card, _ = holder(live_app)
    show_voucher(phone, card, "满20减5")
    phone.click("#text-size")
    phone.reload()
    expect(phone.locator("#text-size")).to_have_attribute("aria-pressed", "true")
    phone.locator("#offers li, #vouchers li").first.wait_for()
    for state in ("home", "voucher"):
        if state == "voucher":
            phone.locator("#vouchers li").first.get_by_role("button").click()
            expect(phone.locator("#qr[data-state=shown]")).to_be_visible()
        small = phone.evaluate(SMALL_TEXT)
        tiny = phone.evaluate(SMALL_TARGETS)
        assert (small, tiny) == ([], []), state
        phone.screenshot(path=OUTPUT / f"wallet-large-{state}.png", full_page=True)


#: Visible elements with text of their own under 20 px.
SMALL_TEXT = """() => [...document.querySelectorAll('body *')].filter(e =>
    e.offsetParent !== null
    && [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())
    && parseFloat(getComputedStyle(e).fontSize) < 20
).map(e => e.id || e.className || e.tagName)"""
#: Visible controls less than 48 px high.
SMALL_TARGETS = """() => [...document.querySelectorAll('button, a, input')].filter(e =>
    e.offsetParent !== null && e.getBoundingClientRect().height < 48
).map(e => e.id || e.textContent)"""


# --- weight -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/scan", "/wallet"])
def test_each_page_weighs_under_60_kb_on_first_load_with_nothing_from_outside(
    browser: Any, live_app: LiveApp, console: Any, path: str
) -> None:
    """Bytes over the wire (text is sent gzip-compressed), with an empty cache."""
    context = browser.new_context(base_url=live_app.url)
    page = console.listen(context.new_page())
    sizes: dict[str, int] = {}
    unpacked: dict[str, int] = {}
    hosts = set()

    def seen(request: Any) -> None:
        hosts.add(urlsplit(request.url).netloc)
        sizes[request.url] = request.sizes()["responseBodySize"]
        unpacked[request.url] = len(request.response().body())

    page.on("requestfinished", seen)
    page.goto(path)
    page.wait_for_load_state("networkidle")
    context.close()
    total = sum(sizes.values())
    (OUTPUT / f"weight{path.replace('/', '-')}.json").write_text(
        json.dumps(
            {
                "total_bytes": total,
                "uncompressed_bytes": sum(unpacked.values()),
                "files": sizes,
                "at": datetime.now(UTC).isoformat(),
            }
        )
    )
    print(f"{path}: {total} bytes ({sum(unpacked.values())} uncompressed) in {len(sizes)} files")
    assert hosts == {urlsplit(live_app.url).netloc}
    assert total < 60_000, sizes
