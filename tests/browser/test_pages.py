"""/wallet and /scan in a real browser: a holder shows a voucher's QR code on a phone,
a till reads it as a USB scanner would (text + Enter), previews, redeems, reverses.

The token is read from the page the way a camera reads it: the QR image shown on the
phone is drawn to a canvas and decoded with zxing-cpp.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
import zxingcpp

from service.domain.auth import Role
from tests.browser.conftest import OUTPUT, LiveApp, problem, ui
from tests.helpers import make_holder, make_key, make_offer, make_partner

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is missing: pip install -e '.[test]'"
)
expect = sync_api.expect

PIN = "204816"
OFFER_TITLE = "邮政寄递九折"
#: Pixels the QR image is drawn at before decoding (8 per module of a version-15 symbol
#: with its 4-module quiet zone each side: 85 modules).
QR_PIXELS = 680


@pytest.fixture(scope="module")
def programme(live_app: LiveApp) -> dict[str, str]:
    """A partner with an active 10 %-off offer (at most ¥50 off, from ¥10) and a scanner key."""

    async def arrange(conn: Any) -> dict[str, str]:
        partner = await make_partner(conn)
        offer = await make_offer(
            conn,
            partner,
            title=OFFER_TITLE,
            description="邮政寄递服务费九折，单笔最多优惠 50 元。",
            percent_bp=1000,
            max_discount=5000,
            min_purchase=1000,
            uses_per_voucher=1,
        )
        scanner = await make_key(conn, Role.SCANNER, partner)
        return {"partner_id": partner, "offer_id": offer, "scanner_key": scanner}

    return live_app.run(arrange)


_counter = iter(range(1, 10_000))


def new_holder(live_app: LiveApp, **fields: Any) -> tuple[str, str]:
    """A new holder's card number and id (PIN is PIN)."""
    card = f"YD-{next(_counter):04d}-{id(live_app) % 10_000:04d}"
    holder_id = live_app.run(lambda conn: make_holder(conn, card_number=card, pin=PIN, **fields))
    return card, holder_id


def focused(page: Any) -> str:
    return page.evaluate("document.activeElement ? document.activeElement.id : ''")


def sign_in(page: Any, card: str, pin: str = PIN) -> None:
    page.goto("/wallet")
    expect(page.locator("#card")).to_be_visible()
    page.fill("#card", card)
    page.fill("#pin", pin)
    page.press("#pin", "Enter")


def claim_and_show(page: Any, card: str) -> None:
    sign_in(page, card)
    offer = page.locator("#offers li", has_text=OFFER_TITLE)
    offer.get_by_role("button", name=ui("claim")).click()
    expect(page.locator("#qr[data-state=shown]")).to_be_visible()


def read_qr(page: Any) -> str:
    """The token in the QR code on screen, decoded from the image's pixels."""
    encoded = page.evaluate(
        """(size) => {
            const image = document.getElementById("qr");
            const canvas = document.createElement("canvas");
            canvas.width = size;
            canvas.height = size;
            const context = canvas.getContext("2d");
            context.fillStyle = "#fff";
            context.fillRect(0, 0, size, size);
            context.drawImage(image, 0, 0, size, size);
            const rgba = context.getImageData(0, 0, size, size).data;
            let gray = "";
            for (let i = 0; i < rgba.length; i += 4) gray += String.fromCharCode(rgba[i]);
            return btoa(gray);
        }""",
        QR_PIXELS,
    )
    pixels = base64.b64decode(encoded)
    found = zxingcpp.read_barcode(
        memoryview(pixels).cast("B", (QR_PIXELS, QR_PIXELS)),
        formats=zxingcpp.BarcodeFormat.QRCode,
    )
    assert found is not None, "no QR code readable on the wallet page"
    return found.text


def open_till(page: Any, scanner_key: str) -> None:
    """/scan with the scanner key typed in (as staff do once per browser)."""
    page.goto("/scan")
    expect(page.locator("#key-input")).to_be_visible()
    assert focused(page) == "key-input"
    page.keyboard.type(scanner_key)
    page.keyboard.press("Enter")
    expect(page.locator("#till")).to_be_visible()
    assert focused(page) == "code"


def scan(page: Any, token: str) -> None:
    """What a USB scanner does: type the text, press Enter."""
    page.keyboard.type(token)
    page.keyboard.press("Enter")


def ledger(live_app: LiveApp, holder_id: str) -> list[dict[str, Any]]:
    async def read(conn: Any) -> list[dict[str, Any]]:
        rows = await conn.fetch(
            """
            SELECT r.purchase_amount, r.discount_amount, x.id IS NOT NULL AS reversed, x.reason
            FROM redemptions r LEFT JOIN reversals x ON x.redemption_id = r.id
            WHERE r.holder_id = $1 ORDER BY r.id
            """,
            holder_id,
        )
        return [dict(row) for row in rows]

    return live_app.run(read)


def has_no_horizontal_scroll(page: Any) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_holder_shows_a_voucher_and_the_till_redeems_and_reverses_it(
    phone: Any, till: Any, live_app: LiveApp, programme: dict[str, str]
) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    card, holder_id = new_holder(live_app)

    # The wallet: a wrong PIN is refused in plain words, the right one signs in.
    sign_in(phone, card, pin="999999")
    expect(phone.locator("#sign-in-problem")).to_have_text(ui("sign_in_wrong"))
    phone.fill("#pin", PIN)
    phone.press("#pin", "Enter")
    offer = phone.locator("#offers li", has_text=OFFER_TITLE)
    # The offer's terms in the service's own words (service.domain.terms).
    expect(offer).to_contain_text("满¥10可用，9折，最多减¥50")
    assert has_no_horizontal_scroll(phone)
    phone.screenshot(path=OUTPUT / "wallet-offers.png", full_page=True)

    # Claim: the QR code shows at once, with a countdown to its refresh.
    offer.get_by_role("button", name=ui("claim")).click()
    expect(phone.locator("#qr[data-state=shown]")).to_be_visible()
    expect(phone.locator("#countdown")).to_contain_text("后失效")
    assert has_no_horizontal_scroll(phone)
    phone.screenshot(path=OUTPUT / "wallet.png", full_page=True)
    token = read_qr(phone)

    # The till: the key once, then the scanner's text + Enter lands in the code input.
    open_till(till, programme["scanner_key"])
    scan(till, token)
    expect(till.locator("#outcome")).to_have_text(ui("amount_needed"))  # a priced offer
    assert focused(till) == "amount"
    till.keyboard.type("128.00")
    till.keyboard.press("Enter")
    expect(till.locator("#preview")).to_be_visible()
    expect(till.locator("#preview-offer")).to_have_text(OFFER_TITLE)
    # The till shows the offer's rules in the service's words (from its till pack).
    expect(till.locator("#preview-terms")).to_have_text("满¥10可用，9折，最多减¥50，所有持证人可用")
    expect(till.locator("#preview-discount")).to_have_text("−¥12.80")
    expect(till.locator("#preview-payable")).to_have_text("¥115.20")
    assert focused(till) == "confirm"
    till.screenshot(path=OUTPUT / "scan-preview.png")
    till.keyboard.press("Enter")
    outcome = till.locator("#outcome")
    expect(outcome).to_contain_text(ui("redeemed"))
    expect(outcome).to_contain_text(ui("redeemed_amounts", discount="¥12.80", payable="¥115.20"))
    assert focused(till) == "code"
    # Nothing carries over to the next customer after a success either.
    expect(till.locator("#code")).to_have_value("")
    expect(till.locator("#amount")).to_have_value("")
    till.screenshot(path=OUTPUT / "scan.png")
    assert ledger(live_app, holder_id) == [
        {"purchase_amount": 12800, "discount_amount": 1280, "reversed": False, "reason": None}
    ]

    # The phone sees the use; the same code again at the till is refused in plain words.
    expect(phone.locator("#voucher-done")).to_have_text(
        ui("saved_done", amount="¥12.80"), timeout=15_000
    )
    expect(phone.locator("#voucher-status")).to_be_hidden()  # no red error beside it
    expect(phone.locator("#qr-caption")).to_be_hidden()  # no "show this QR" without a QR
    # A used-up voucher is refused at the scan, before any amount is asked for (typing
    # one at once raced the answer: the till had cleared the code and took "50" for it).
    scan(till, token)
    expect(outcome).to_contain_text(problem("voucher_used_up"))
    assert focused(till) == "code"
    till.screenshot(path=OUTPUT / "scan-used-up.png")

    # Reverse it from this till's list of today, with the keyboard alone.
    reverse = till.locator("#today-list button")
    expect(reverse).to_have_count(1)
    for _ in range(12):
        if till.evaluate("document.activeElement.closest('#today-list') !== null"):
            break
        till.keyboard.press("Tab")
    till.keyboard.press("Enter")
    assert focused(till) == "reverse-reason"
    till.keyboard.type("顾客退货")
    till.keyboard.press("Enter")
    expect(outcome).to_contain_text(ui("reversed"))
    expect(till.locator("#today-list")).to_contain_text(ui("status_reversed"))
    assert ledger(live_app, holder_id) == [
        {"purchase_amount": 12800, "discount_amount": 1280, "reversed": True, "reason": "顾客退货"}
    ]

    # Back on the phone, the reversal has given the use back.
    phone.get_by_role("button", name=ui("back")).click()
    voucher = phone.locator("#vouchers li", has_text=OFFER_TITLE)
    expect(voucher).to_contain_text(ui("voucher_status_active"))
    expect(voucher).to_contain_text(ui("uses_left", n=1))
    phone.screenshot(path=OUTPUT / "wallet-home.png", full_page=True)


def test_a_retried_confirm_sends_the_same_idempotency_key_and_redeems_once(
    phone: Any, till: Any, live_app: LiveApp, programme: dict[str, str]
) -> None:
    card, holder_id = new_holder(live_app)
    claim_and_show(phone, card)
    token = read_qr(phone)
    open_till(till, programme["scanner_key"])

    keys: list[str] = []
    answers_lost = [1]

    def lose_first_answer(route: Any) -> None:
        keys.append(route.request.headers["idempotency-key"])
        response = route.fetch()  # the service redeems…
        if answers_lost:
            answers_lost.pop()
            route.abort("connectionreset")  # …but the till never hears back
        else:
            route.fulfill(response=response)

    till.route("**/v1/redemptions", lose_first_answer)
    # The amount first, then the scan: Enter after the code previews at once.
    till.keyboard.press("Tab")
    assert focused(till) == "amount"
    till.keyboard.type("20")
    till.keyboard.press("Shift+Tab")
    scan(till, token)
    expect(till.locator("#preview")).to_be_visible()
    expect(till.locator("#preview-discount")).to_have_text("−¥2.00")
    till.keyboard.press("Enter")
    expect(till.locator("#outcome")).to_contain_text(problem("network_error"))
    expect(till.locator("#confirm")).to_have_text(ui("retry_redeem"))
    assert focused(till) == "confirm"
    till.keyboard.press("Enter")
    expect(till.locator("#outcome")).to_contain_text(ui("redeemed"))

    assert len(keys) == 2 and keys[0] == keys[1]
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", keys[0]
    )
    assert ledger(live_app, holder_id) == [
        {"purchase_amount": 2000, "discount_amount": 200, "reversed": False, "reason": None}
    ]


def test_the_qr_code_is_refreshed_before_its_token_expires(
    phone: Any, live_app: LiveApp, programme: dict[str, str]
) -> None:
    card, _ = new_holder(live_app)
    phone.clock.install()
    claim_and_show(phone, card)
    first = phone.get_attribute("#qr", "src")
    expect(phone.locator("#countdown")).to_contain_text(re.compile(r"[45]:\d\d"))
    # YOUDAI_TOKEN_TTL is 300 s: a new code is fetched 30 s before the end.
    phone.clock.fast_forward("04:20")
    expect(phone.locator("#countdown")).to_contain_text(re.compile(r"0:[34]\d"))
    phone.clock.fast_forward(15_000)
    expect(phone.locator("#qr[data-state=shown]")).not_to_have_attribute("src", first)
    expect(phone.locator("#countdown")).to_contain_text(re.compile(r"[45]:\d\d"))
    assert read_qr(phone)


def test_scanner_key_is_asked_once_kept_and_can_be_changed(
    till: Any, programme: dict[str, str]
) -> None:
    till.goto("/scan")
    expect(till.locator("#key-input")).to_be_focused()
    till.keyboard.type("yd_not_a_real_key_000000000000000")
    till.keyboard.press("Enter")
    expect(till.locator("#key-problem")).to_have_text(ui("key_rejected"))

    till.fill("#key-input", programme["scanner_key"])
    till.keyboard.press("Enter")
    expect(till.locator("#code")).to_be_focused()
    till.reload()
    expect(till.locator("#code")).to_be_focused()
    expect(till.locator("#key-setup")).to_be_hidden()

    till.get_by_role("button", name=ui("change_key")).click()
    expect(till.locator("#key-input")).to_be_focused()
    till.keyboard.press("Escape")
    expect(till.locator("#code")).to_be_focused()
    till.get_by_role("button", name=ui("change_key")).click()
    till.get_by_role("button", name=ui("cancel"), exact=True).click()
    expect(till.locator("#code")).to_be_focused()


def test_the_code_input_gets_the_focus_back(till: Any, programme: dict[str, str]) -> None:
    open_till(till, programme["scanner_key"])
    till.mouse.click(5, 700)  # the page background
    expect(till.locator("#code")).to_be_focused()
    till.get_by_role("button", name=ui("clear")).focus()
    till.keyboard.type("eyJ")  # a scan starting while a button has the focus
    expect(till.locator("#code")).to_have_value("eyJ")


def test_refusals_at_the_till_are_said_in_plain_words(till: Any, programme: dict[str, str]) -> None:
    open_till(till, programme["scanner_key"])
    till.fill("#amount", "12.805")
    till.focus("#code")
    scan(till, "not-a-voucher-code")
    expect(till.locator("#outcome")).to_have_text(ui("amount_too_precise"))
    assert focused(till) == "amount"
    till.fill("#amount", "12.80")
    till.keyboard.press("Enter")
    expect(till.locator("#outcome")).to_contain_text(problem("token_invalid"))
    expect(till.locator("#outcome")).to_contain_text(ui("next_rescan"))  # what to do next
    expect(till.locator("#outcome")).not_to_contain_text("token_invalid")  # never a raw code
    # Nothing carries over to the next customer.
    expect(till.locator("#amount")).to_have_value("")
    expect(till.locator("#code")).to_have_value("")
    assert focused(till) == "code"


#: The till's own parsing, from its module (through the page's import map).
PARSE_YUAN = 'async (t) => (await import("/pages/static/common.js")).parseYuan(t)'


@pytest.mark.parametrize(
    ("typed", "fen"),
    [
        ("12.80", 1280),
        ("12.8", 1280),
        ("12", 1200),
        ("0.07", 7),
        ("19.99", 1999),
        ("1.13", 113),
        ("4.35", 435),
        ("１２．８０", 1280),
        ("¥ 128", 12800),
        (" 100000000.00 ", 10_000_000_000),
    ],
)
def test_yuan_are_converted_to_exact_fen(till: Any, typed: str, fen: int) -> None:
    till.goto("/scan")
    assert till.evaluate(PARSE_YUAN, typed) == {"fen": fen}


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("12.805", "amount_too_precise"),
        ("0.001", "amount_too_precise"),
        ("", "amount_required"),
        ("0", "amount_invalid"),
        ("-5", "amount_invalid"),
        ("1e3", "amount_invalid"),
        ("12,80", "amount_invalid"),
        ("100000000.01", "amount_too_large"),
    ],
)
def test_amounts_that_are_not_yuan_are_refused(till: Any, typed: str, error: str) -> None:
    till.goto("/scan")
    assert till.evaluate(PARSE_YUAN, typed) == {"error": error}


def test_language_follows_the_browser_and_the_toggle_switches_it(
    browser: Any, live_app: LiveApp, console: Any
) -> None:
    context = browser.new_context(base_url=live_app.url, locale="en-US")
    page = console.listen(context.new_page())
    try:
        page.goto("/wallet")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#sign-in-heading")).to_have_text(ui("sign_in_heading", "en"))
        page.get_by_role("button", name=ui("other_language", "en")).click()
        expect(page.locator("#sign-in-heading")).to_have_text(ui("sign_in_heading", "zh"))
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        page.get_by_role("button", name=ui("other_language", "zh")).click()
        page.goto("/scan")  # the choice is kept
        expect(page.locator("#key-heading")).to_have_text(ui("key_heading", "en"))
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=OUTPUT / "scan-key-en.png")
    finally:
        context.close()


def test_pages_fit_a_360_px_screen(
    phone: Any, live_app: LiveApp, programme: dict[str, str]
) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    phone.goto("/wallet")
    expect(phone.locator("#card")).to_be_visible()
    assert has_no_horizontal_scroll(phone)
    phone.screenshot(path=OUTPUT / "wallet-sign-in-360.png")

    open_till(phone, programme["scanner_key"])
    phone.keyboard.type("x" * 200)  # a long code must wrap or scroll inside its input
    phone.keyboard.press("Enter")
    phone.keyboard.type("88.00")
    phone.keyboard.press("Enter")
    expect(phone.locator("#outcome")).to_contain_text(problem("token_invalid"))
    assert has_no_horizontal_scroll(phone)
    phone.screenshot(path=OUTPUT / "scan-360.png", full_page=True)


def test_signing_out_forgets_the_session(
    phone: Any, live_app: LiveApp, programme: dict[str, str]
) -> None:
    card, holder_id = new_holder(live_app)
    sign_in(phone, card)
    expect(phone.locator("#greeting")).to_contain_text("王建国")

    def sessions() -> int:
        return live_app.run(
            lambda conn: conn.fetchval(
                "SELECT count(*) FROM holder_sessions WHERE holder_id = $1", holder_id
            )
        )

    assert sessions() == 1
    phone.get_by_role("button", name=ui("sign_out")).click()
    expect(phone.locator("#card")).to_be_visible()
    expect(phone.locator("#notice")).to_have_text(ui("signed_out"))
    assert phone.evaluate("localStorage.getItem('youdai.session')") is None
    for _ in range(50):  # the page does not wait for the server to forget the session
        if sessions() == 0:
            break
        time.sleep(0.1)
    assert sessions() == 0
    phone.reload()
    expect(phone.locator("#sign-in")).to_be_visible()
