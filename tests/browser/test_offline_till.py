"""/scan without a network (docs/pages.md, "The till offline"), in Debian's Chromium
against the real service: the worker keeps the page, the till pack comes from
GET /v1/till/pack, QR tokens are checked in the page, offline redemptions wait in
IndexedDB and reach the service when the network is back.

The network is cut the way a till loses it: `context.set_offline(True)`.
"""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.config import load_settings
from service.domain.auth import Role
from service.domain.tokens import SigningKey, generate_signing_key, mint
from tests.browser import test_till_and_wallet as till_pages
from tests.browser.conftest import LiveApp, problem, ui
from tests.helpers import make_holder, make_key, make_offer, make_partner, make_voucher, token_for

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is missing: pip install -e '.[test]'"
)
expect = sync_api.expect

SETTINGS = load_settings({})
#: axe-core, as the till's other pages are checked with it.
axe_source = till_pages.axe_source
serious_violations = till_pages.serious_violations
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
        manager = await make_key(conn, Role.PARTNER, partner)
        return {
            "partner": partner,
            "manager": manager,
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


def pack_kept(page: Any) -> None:
    """The till pack was fetched (GET /v1/till/pack) and kept."""
    expect(page.locator("#pack-age")).to_have_text(ui("pack_age_now"))


def redeem_offline(page: Any, token: str, amount: str | None = None) -> None:
    """Scan, preview (in the page), confirm: the till says it was accepted offline."""
    scan(page, token, amount)
    expect(page.locator("#preview")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#outcome[data-kind=success] .outcome-title")).to_have_text(
        ui("offline_accepted")
    )


def call(live_app: LiveApp, method: str, path: str, key: str, body: Any = None) -> Any:
    """The service over HTTP, as another till or the partner's manager calls it."""
    request = urllib.request.Request(
        live_app.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


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


PRICE_IN_PAGE = """async (cases) => {
    const { quote } = await import("/pages/static/pricing.js");
    return cases.map((c) => {
        const got = quote(c.offer, c.purchase_amount);
        return got.problem ? {refusal: got.problem.code}
            : {discount_amount: got.discount_amount, payable_amount: got.payable_amount};
    });
}"""
ANSWER = ("refusal", "discount_amount", "payable_amount")


def test_the_pages_pricing_agrees_with_the_services_fen_for_fen(till: Any) -> None:
    """tests/browser/pricing_vectors.json, written by the service's own pricing
    (tests/browser/pricing_vectors.py), through the page's pricing.js."""
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert len(cases) >= 300
    till.goto("/scan")
    expect(till.locator("#key-input")).to_be_visible()
    # pricing.js is not part of the first load: the till imports it when the network goes.
    loaded = till.evaluate("performance.getEntriesByType('resource').map((r) => r.name)")
    assert not [name for name in loaded if "pricing.js" in name]
    got = till.evaluate(PRICE_IN_PAGE, cases)
    disagreements = [
        (case, page)
        for case, page in zip(cases, got, strict=True)
        if page != {name: case[name] for name in ANSWER if name in case}
    ]
    assert not disagreements, disagreements[:5]


# --- redeeming offline, then sending --------------------------------------------------------


def test_offline_redemptions_survive_a_reload_and_reach_the_service_with_their_conflict(
    context: Any, till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_online(till, shop["till"])
    pack_kept(till)
    priced, priced_token = voucher_token(live_app, shop["priced"])
    service, service_token = voucher_token(live_app, shop["service"])
    contested, contested_token = voucher_token(live_app, shop["priced"])
    cut = datetime.now(UTC)
    context.set_offline(True)

    redeem_offline(till, priced_token, amount="30")
    expect(till.locator("#outcome .outcome-line").first).to_have_text(
        ui("redeemed_amounts", discount="¥3.00", payable="¥27.00")
    )
    redeem_offline(till, service_token)
    expect(till.locator("#outcome .outcome-line").first).to_have_text(
        ui("redeemed_service", value="¥5.00")
    )
    # Meanwhile another till, online, redeems the third voucher: this one cannot know.
    call(
        live_app,
        "POST",
        "/v1/redemptions",
        shop["other_till"],
        {"token": contested_token, "purchase_amount": 5000},
    )
    redeem_offline(till, contested_token, amount="40")
    expect(till.locator("#waiting")).to_have_text(ui("offline_waiting", n=3))

    response = till.reload()
    assert response is not None and response.from_service_worker
    expect(till.locator("#waiting")).to_have_text(ui("offline_waiting", n=3))
    restored = datetime.now(UTC)
    context.set_offline(False)
    expect(till.locator("#waiting")).to_be_hidden(timeout=30_000)

    listed = call(
        live_app, "GET", f"/v1/redemptions?offer_id={shop['priced']}&limit=100", shop["manager"]
    )["items"]
    listed += call(
        live_app, "GET", f"/v1/redemptions?offer_id={shop['service']}&limit=100", shop["manager"]
    )["items"]
    mine = {r["voucher_id"]: r for r in listed if r.get("offline_at")}
    assert set(mine) == {priced, service, contested}
    for redemption in mine.values():
        made = datetime.fromisoformat(redemption["offline_at"])
        assert cut <= made <= restored, redemption
        assert datetime.fromisoformat(redemption["created_at"]) >= restored
    # Sent oldest first: they arrived in the order they were made.
    arrival = sorted(mine, key=lambda v: datetime.fromisoformat(mine[v]["created_at"]))
    assert arrival == [priced, service, contested]
    assert (mine[priced]["discount_amount"], mine[priced]["payable_amount"]) == (300, 2700)
    assert (mine[service]["discount_amount"], mine[service]["payable_amount"]) == (500, 0)
    assert mine[priced].get("conflict") is None and mine[service].get("conflict") is None
    assert mine[contested]["conflict"] == "voucher_used_up"
    assert (mine[contested]["discount_amount"], mine[contested]["payable_amount"]) == (400, 3600)
    online = [r for r in listed if r["voucher_id"] == contested and not r.get("offline_at")]
    assert len(online) == 1


def test_a_second_scan_of_a_voucher_at_this_till_offline_is_refused(
    context: Any, till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_online(till, shop["till"])
    pack_kept(till)
    _, token = voucher_token(live_app, shop["service"])
    context.set_offline(True)
    redeem_offline(till, token)
    scan(till, token)
    refused_with(till, "voucher_used_up")
    expect(till.locator("#outcome .outcome-line")).to_have_text(ui("next_full_price"))
    expect(till.locator("#waiting")).to_have_text(ui("offline_waiting", n=1))


def forged(token: str, key: SigningKey) -> str:
    """The claims of `token`, signed again by `key`."""
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    forged_token, _ = mint(
        key,
        voucher_id=payload["sub"],
        partner_id=payload["aud"],
        offer_id=payload["ofr"],
        issuer=payload["iss"],
        ttl_seconds=payload["exp"] - payload["iat"],
    )
    return forged_token


def test_a_forged_token_is_refused_offline(
    context: Any, till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    open_online(till, shop["till"])
    pack_kept(till)
    _, genuine = voucher_token(live_app, shop["service"])
    header = json.loads(base64.urlsafe_b64decode(genuine.split(".")[0] + "=="))
    impostor = generate_signing_key()
    # Signed with another key that claims the service's kid; the genuine token with its
    # signature altered; the genuine claims under alg "none".
    under_its_kid = forged(
        genuine, SigningKey(header["kid"], impostor.private_key, impostor.public_key)
    )
    head, body, signature = genuine.split(".")
    altered = (
        f"{head}.{body}.{signature[:10]}{'A' if signature[10] != 'A' else 'B'}{signature[11:]}"
    )
    none_header = (
        base64.urlsafe_b64encode(json.dumps({**header, "alg": "none"}).encode())
        .rstrip(b"=")
        .decode()
    )
    unsigned = f"{none_header}.{body}."
    context.set_offline(True)
    for token in (under_its_kid, altered, unsigned):
        scan(till, token)
        refused_with(till, "token_invalid")
    expect(till.locator("#waiting")).to_be_hidden()
    # The genuine one still passes: the refusals were the forgeries', not the till's.
    redeem_offline(till, genuine)


def test_a_pack_past_its_valid_until_stops_offline_redemptions(
    context: Any, till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    till.clock.install()
    open_online(till, shop["till"])
    pack_kept(till)
    context.set_offline(True)
    till.clock.fast_forward("25:00:00")
    expect(till.locator("#pack-age")).to_have_text(ui("pack_stale"))
    _, token = voucher_token(live_app, shop["service"])
    scan(till, token)
    refused_with(till, "offline_pack_stale")
    expect(till.locator("#outcome .outcome-line")).to_have_text(ui("next_offline_blocked"))
    expect(till.locator("#waiting")).to_be_hidden()


def test_without_ed25519_in_the_browser_offline_mode_is_unavailable(
    context: Any, till: Any, live_app: LiveApp, shop: dict[str, str]
) -> None:
    # A browser whose WebCrypto has no Ed25519: importing such a key fails.
    context.add_init_script(
        """(() => {
        const importKey = crypto.subtle.importKey.bind(crypto.subtle);
        crypto.subtle.importKey = (format, key, algorithm, ...rest) =>
            (algorithm && (algorithm === "Ed25519" || algorithm.name === "Ed25519"))
                ? Promise.reject(new DOMException("Unrecognized name", "NotSupportedError"))
                : importKey(format, key, algorithm, ...rest);
    })()"""
    )
    open_online(till, shop["till"])
    pack_kept(till)
    _, token = voucher_token(live_app, shop["service"])
    context.set_offline(True)
    expect(till.locator("#network-state")).to_have_text(ui("offline_mode_unavailable"))
    scan(till, token)
    refused_with(till, "offline_unavailable")
    expect(till.locator("#waiting")).to_be_hidden()


def test_axe_finds_nothing_serious_in_the_offline_till(
    context: Any, till: Any, live_app: LiveApp, shop: dict[str, str], axe_source: str
) -> None:
    open_online(till, shop["till"])
    pack_kept(till)
    _, token = voucher_token(live_app, shop["priced"])
    states = {}
    context.set_offline(True)
    scan(till, token, amount="30")
    expect(till.locator("#preview")).to_be_visible()
    states["offline preview"] = serious_violations(till, axe_source)
    till.keyboard.press("Enter")
    expect(till.locator("#waiting")).to_be_visible()
    states["accepted offline"] = serious_violations(till, axe_source)
    scan(till, "123456789012345678")
    refused_with(till, "offline_code")
    states["refused offline"] = serious_violations(till, axe_source)
    assert states == {state: [] for state in states}
