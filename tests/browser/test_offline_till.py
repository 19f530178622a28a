"""/scan without a network (docs/pages.md, "The till offline"), in Debian's Chromium
against the real service: the worker keeps the page, the till pack comes from
GET /v1/till/pack, QR tokens are checked in the page, offline redemptions wait in
IndexedDB and reach the service when the network is back.

The network is cut the way a till loses it: `context.set_offline(True)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.config import load_settings
from service.domain.auth import Role
from tests.browser import pricing_vectors
from tests.browser.conftest import LiveApp, problem, ui
from tests.helpers import make_holder, make_key, make_offer, make_partner, make_voucher, token_for

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is missing: pip install -e '.[test]'"
)
expect = sync_api.expect

SETTINGS = load_settings({})
VECTORS = Path(__file__).with_name("pricing_vectors.json")


@pytest.fixture(scope="module")
def shop(live_app: LiveApp) -> dict[str, str]:
    """A post office with a 10 %-off offer (at most ¥50 off, from ¥10), a service offer
    and two tills' scanner keys."""

    async def arrange(conn: Any) -> dict[str, str]:
        partner = await make_partner(conn, name="乡镇邮政所")
        priced = await make_offer(
            conn,
            partner,
            title="寄递九折",
            percent_bp=1000,
            max_discount=5000,
            min_purchase=1000,
            uses_per_voucher=1,
        )
        service = await make_offer(
            conn, partner, title="优先办理", kind="service", nominal_value=500
        )
        till = await make_key(conn, Role.SCANNER, partner)
        other_till = await make_key(conn, Role.SCANNER, partner)
        return {
            "partner": partner,
            "priced": priced,
            "service": service,
            "till": till,
            "other_till": other_till,
        }

    return live_app.run(arrange)


_cards = iter(range(1, 10_000))


def voucher_token(live_app: LiveApp, offer: str) -> tuple[str, str]:
    """A new holder's voucher of `offer`: its id and a freshly minted token."""
    card = f"YD-OFF-{next(_cards):04d}"
    holder_id = live_app.run(lambda conn: make_holder(conn, card_number=card))

    async def mint(conn: Any) -> tuple[str, str]:
        voucher = await make_voucher(conn, SETTINGS, holder_id, offer)
        return voucher, await token_for(conn, SETTINGS, voucher)

    return live_app.run(mint)


@pytest.fixture
def context(browser: Any, live_app: LiveApp) -> Any:
    """A till's browser of its own (its own worker, cache and IndexedDB)."""
    made = browser.new_context(
        base_url=live_app.url, viewport={"width": 1024, "height": 768}, locale="zh-CN"
    )
    made.set_default_timeout(15_000)
    yield made
    made.close()


@pytest.fixture
def till(context: Any, console: Any) -> Any:
    return console.listen(context.new_page())


def open_online(page: Any, key: str) -> None:
    """The till opened online with its key, until its worker controls the page (the
    till's files are cached by then) and its pack is kept."""
    page.goto("/scan")
    page.fill("#key-input", key)
    page.press("#key-input", "Enter")
    expect(page.locator("#till")).to_be_visible()
    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null")


def scan(page: Any, text: str, amount: str | None = None) -> None:
    page.focus("#code")
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    if amount is not None:
        expect(page.locator("#amount")).to_be_focused()
        page.keyboard.type(amount)
        page.keyboard.press("Enter")


def refused_with(page: Any, code: str) -> None:
    outcome = page.locator("#outcome[data-kind=problem]")
    expect(outcome).to_be_visible()
    expect(outcome.locator(".outcome-title")).to_have_text(problem(code))


# --- the page and its worker -----------------------------------------------------------------


def test_the_till_opens_with_no_network_once_opened_online(
    context: Any, till: Any, shop: dict[str, str]
) -> None:
    open_online(till, shop["till"])
    context.set_offline(True)
    response = till.reload()
    assert response is not None and response.from_service_worker
    expect(till.locator("#till")).to_be_visible()
    expect(till.locator("#code")).to_be_focused()
    expect(till.locator("#network-state")).to_have_text(ui("offline_mode"))
    assert till.evaluate("navigator.onLine") is False


def test_a_voucher_code_offline_is_refused_and_the_qr_asked_for(
    context: Any, till: Any, shop: dict[str, str]
) -> None:
    open_online(till, shop["till"])
    context.set_offline(True)
    scan(till, "123456789012345678")
    refused_with(till, "offline_code")
    expect(till.locator("#outcome .outcome-line")).to_have_text(ui("next_scan_qr"))
    expect(till.locator("#code")).to_have_value("")


# --- pricing ----------------------------------------------------------------------------------


def vector_files() -> list[Any]:
    """The vectors written by the service's pricing: the file in this folder when there is
    one, and those tests/browser/pricing_vectors.py writes now."""
    sets: list[Any] = [pytest.param(pricing_vectors.vectors(), id="generated")]
    if VECTORS.exists():
        sets.append(pytest.param(json.loads(VECTORS.read_text(encoding="utf-8")), id=VECTORS.name))
    return sets


PRICE_IN_PAGE = """(vectors) => vectors.map((v) => {
    const got = window.YoudaiPricing.quote(v.rule, v.purchase_amount);
    return got.problem ? {problem: got.problem.code}
        : {discount_amount: got.discount_amount, payable_amount: got.payable_amount};
})"""


@pytest.mark.parametrize("vectors", vector_files())
def test_the_pages_pricing_agrees_with_the_services_fen_for_fen(
    till: Any, vectors: list[dict[str, Any]]
) -> None:
    assert len(vectors) >= 300
    till.goto("/scan")
    expect(till.locator("#key-input")).to_be_visible()
    got = till.evaluate(PRICE_IN_PAGE, vectors)
    disagreements = [
        (v["rule"], v["purchase_amount"], v["expect"], page)
        for v, page in zip(vectors, got, strict=True)
        if page != v["expect"]
    ]
    assert not disagreements, disagreements[:5]
