"""Holders see the offers open to them, claim one voucher per offer, and mint tokens."""

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import jwt
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.domain.tokens import TOKEN_TYP
from tests.helpers import bearer, make_holder, make_offer, make_partner

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def session_for(client: TestClient, db, **holder) -> tuple[str, dict[str, str]]:
    card = holder.pop("card_number", "YD-7-0001")
    holder_id = await make_holder(db, card_number=card, pin="204816", **holder)
    response = await client.post("/v1/holder-sessions", json={"card_number": card, "pin": "204816"})
    return holder_id, bearer((await response.json())["token"])


async def test_my_offers_lists_only_what_the_holder_could_use_now(client: TestClient, db) -> None:
    partner = await make_partner(db)
    closed_partner = await make_partner(db, name="closed", status="suspended")
    now = datetime.now(UTC)
    open_offer = await make_offer(db, partner, title="open")
    await make_offer(db, partner, title="for families only", eligible_categories=["martyr_family"])
    await make_offer(db, partner, title="draft", status="draft")
    await make_offer(db, partner, title="paused", status="paused")
    await make_offer(db, partner, title="future", starts_at=now + timedelta(days=1))
    await make_offer(
        db,
        partner,
        title="over",
        starts_at=now - timedelta(days=2),
        ends_at=now - timedelta(days=1),
    )
    await make_offer(db, closed_partner, title="partner suspended")
    veteran_offer = await make_offer(db, partner, title="veterans", eligible_categories=["veteran"])
    _, headers = await session_for(client, db, category="veteran")
    page = await (await client.get("/v1/me/offers", headers=headers)).json()
    assert sorted(item["id"] for item in page["items"]) == sorted([open_offer, veteran_offer])
    item = next(i for i in page["items"] if i["id"] == open_offer)
    assert item["currency"] == "CNY" and item["partner_name"] == "区邮政分公司"
    assert "spent" not in item and "budget" not in item


async def test_claim_creates_then_returns_the_same_voucher(client: TestClient, db) -> None:
    offer = await make_offer(db, await make_partner(db), uses_per_voucher=3)
    _, headers = await session_for(client, db)
    first = await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    assert first.status == 201
    voucher = await first.json()
    assert voucher["status"] == "active" and voucher["uses_left"] == 3
    assert voucher["offer"]["id"] == offer
    again = await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    assert again.status == 200
    assert (await again.json())["id"] == voucher["id"]


async def test_twenty_concurrent_claims_create_exactly_one_voucher(
    client: TestClient, db: asyncpg.Connection
) -> None:
    offer = await make_offer(db, await make_partner(db))
    _, headers = await session_for(client, db)
    answers = await asyncio.gather(
        *(
            client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
            for _ in range(20)
        )
    )
    statuses = sorted(a.status for a in answers)
    assert statuses == [200] * 19 + [201]
    ids = {(await a.json())["id"] for a in answers}
    assert len(ids) == 1
    assert await db.fetchval("SELECT count(*) FROM vouchers") == 1


async def test_claim_refusals_name_the_rule(client: TestClient, db) -> None:
    partner = await make_partner(db)
    _, headers = await session_for(client, db, category="veteran")
    cases = {
        await make_offer(db, partner, eligible_categories=["martyr_family"]): "holder_ineligible",
        await make_offer(db, partner, status="paused"): "offer_inactive",
        await make_offer(db, await make_partner(db, status="suspended")): "partner_inactive",
    }
    for offer, code in cases.items():
        response = await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
        assert response.status == 409, code
        assert (await response.json())["code"] == code
    missing = await client.post("/v1/me/vouchers", json={"offer_id": "ofr_x"}, headers=headers)
    assert missing.status == 404


async def test_voucher_expires_at_the_end_of_the_local_day_or_the_offer_end(
    client: TestClient, db
) -> None:
    partner = await make_partner(db)
    _, headers = await session_for(client, db)
    offer = await make_offer(db, partner, voucher_valid_days=2)
    voucher = await (
        await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    ).json()
    expires = datetime.fromisoformat(voucher["expires_at"]).astimezone(SHANGHAI)
    today = datetime.now(SHANGHAI).date()
    assert expires.date() == today + timedelta(days=3) and expires.time().hour == 0
    soon = datetime.now(UTC) + timedelta(hours=5)
    short = await make_offer(db, partner, voucher_valid_days=30, ends_at=soon)
    voucher = await (
        await client.post("/v1/me/vouchers", json={"offer_id": short}, headers=headers)
    ).json()
    assert datetime.fromisoformat(voucher["expires_at"]) == soon.replace(
        microsecond=soon.microsecond
    )


async def test_an_expired_voucher_is_replaced_by_a_new_claim(client: TestClient, db) -> None:
    offer = await make_offer(db, await make_partner(db))
    _, headers = await session_for(client, db)
    first = await (
        await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    ).json()
    await db.execute("UPDATE vouchers SET expires_at = now() - interval '1 minute'")
    listed = await (await client.get("/v1/me/vouchers?status=expired", headers=headers)).json()
    assert [v["id"] for v in listed["items"]] == [first["id"]]
    second = await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    assert second.status == 201
    assert (await second.json())["id"] != first["id"]


async def test_holder_sees_only_own_vouchers(client: TestClient, db) -> None:
    offer = await make_offer(db, await make_partner(db))
    _, mine = await session_for(client, db, card_number="MINE-0001")
    _, theirs = await session_for(client, db, card_number="THEIRS-01")
    voucher = await (
        await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=theirs)
    ).json()
    assert (await client.get(f"/v1/me/vouchers/{voucher['id']}", headers=mine)).status == 404
    assert (await client.get(f"/v1/me/vouchers/{voucher['id']}/token", headers=mine)).status == 404
    assert (await (await client.get("/v1/me/vouchers", headers=mine)).json())["items"] == []


async def test_token_names_voucher_offer_and_partner_but_never_the_holder(
    client: TestClient, db, settings
) -> None:
    partner = await make_partner(db)
    offer = await make_offer(db, partner)
    holder_id, headers = await session_for(client, db)
    voucher = await (
        await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    ).json()
    response = await client.get(f"/v1/me/vouchers/{voucher['id']}/token", headers=headers)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    token = body["token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["typ"] == TOKEN_TYP and header["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == voucher["id"] and claims["aud"] == partner
    assert claims["ofr"] == offer  # an offline scanner knows the offer (docs/product.md)
    assert claims["iss"] == settings.issuer
    assert claims["exp"] - claims["iat"] == settings.token_ttl
    text = str(claims) + str(header)
    holder = await db.fetchrow("SELECT * FROM holders WHERE id = $1", holder_id)
    for secret in (holder_id, holder["card_number"], holder["display_name"]):
        assert secret not in text
    second = await (
        await client.get(f"/v1/me/vouchers/{voucher['id']}/token", headers=headers)
    ).json()
    assert second["token"] != token  # minted anew each time


async def test_token_of_a_used_up_voucher_is_refused(client: TestClient, db) -> None:
    offer = await make_offer(db, await make_partner(db))
    _, headers = await session_for(client, db)
    voucher = await (
        await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    ).json()
    await db.execute("UPDATE vouchers SET uses_left = 0, status = 'used_up'")
    response = await client.get(f"/v1/me/vouchers/{voucher['id']}/token", headers=headers)
    assert response.status == 409
    assert (await response.json())["code"] == "voucher_used_up"


async def test_admin_issues_a_voucher_at_the_service_desk(client: TestClient, admin, db) -> None:
    offer = await make_offer(db, await make_partner(db))
    holder = await make_holder(db, card_number="DESK-0001")
    response = await client.post(
        "/v1/vouchers", json={"holder_id": holder, "offer_id": offer}, headers=admin
    )
    assert response.status == 201
    again = await client.post(
        "/v1/vouchers", json={"holder_id": holder, "offer_id": offer}, headers=admin
    )
    assert again.status == 200
    missing = await client.post(
        "/v1/vouchers", json={"holder_id": "hld_x", "offer_id": offer}, headers=admin
    )
    assert missing.status == 404


async def _pause_offer(db, ids: dict) -> None:
    from service.flows import offers as offers_flow

    await offers_flow.change(db, None, ids["offer"], {"status": "paused"})


async def _end_offer(db, ids: dict) -> None:
    from service.flows import offers as offers_flow

    await offers_flow.change(db, None, ids["offer"], {"status": "ended"})


async def _suspend_partner(db, ids: dict) -> None:
    from service.flows import partners as partners_flow

    await partners_flow.change(db, None, ids["partner"], {"status": "suspended"})


async def _suspend_holder(db, ids: dict) -> None:
    from service.flows import holders as holders_flow

    await holders_flow.change(db, None, ids["holder"], {"status": "suspended"})


async def _close_offer_to_the_category(db, ids: dict) -> None:
    await db.execute(
        "UPDATE offers SET eligible_categories = '{disabled_veteran}' WHERE id = $1", ids["offer"]
    )


async def _revoke_voucher(db, ids: dict) -> None:
    await db.execute("UPDATE vouchers SET status = 'revoked' WHERE id = $1", ids["voucher"])


async def _expire_voucher(db, ids: dict) -> None:
    await db.execute(
        "UPDATE vouchers SET expires_at = now() - interval '1 minute' WHERE id = $1",
        ids["voucher"],
    )


async def _use_up_voucher(db, ids: dict) -> None:
    await db.execute(
        "UPDATE vouchers SET uses_left = 0, status = 'used_up' WHERE id = $1", ids["voucher"]
    )


UNUSABLE = {
    "offer paused": (_pause_offer, "offer_inactive"),
    "offer ended": (_end_offer, "offer_inactive"),
    "partner suspended": (_suspend_partner, "partner_inactive"),
    "holder suspended": (_suspend_holder, "holder_inactive"),
    "holder no longer eligible": (_close_offer_to_the_category, "holder_ineligible"),
    "voucher revoked": (_revoke_voucher, "voucher_revoked"),
    "voucher expired": (_expire_voucher, "voucher_expired"),
    "voucher used up": (_use_up_voucher, "voucher_used_up"),
}
SHOWN_AS = ("token", "qr.png", "qr.svg", "barcode.svg")


@pytest.mark.parametrize("state", list(UNUSABLE))
async def test_a_voucher_that_cannot_be_used_now_gets_no_token_qr_or_barcode(
    client: TestClient, db, state: str
) -> None:
    """docs/api.md: the four answer 409 with the rule's code, and no voucher code is drawn."""
    partner = await make_partner(db)
    offer = await make_offer(db, partner)
    holder, headers = await session_for(client, db)
    claimed = await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    voucher = (await claimed.json())["id"]
    live = await client.get(f"/v1/me/vouchers/{voucher}/token", headers=headers)
    code = (await live.json())["code"]
    code_row = "SELECT code_hash, expires_at FROM voucher_codes WHERE voucher_id = $1"
    code_before = await db.fetchrow(code_row, voucher)
    arrange, expected = UNUSABLE[state]
    await arrange(db, {"partner": partner, "offer": offer, "holder": holder, "voucher": voucher})
    for path in (*SHOWN_AS, f"barcode.svg?code={code}"):
        response = await client.get(f"/v1/me/vouchers/{voucher}/{path}", headers=headers)
        assert response.status == 409, (path, await response.text())
        problem = await response.json()
        assert problem["code"] == expected, (path, problem)
        assert response.content_type == "application/problem+json"
    assert await db.fetchrow(code_row, voucher) == code_before  # nothing minted


async def test_a_paused_offer_resumed_shows_its_vouchers_again(client: TestClient, db) -> None:
    from service.flows import offers as offers_flow

    offer = await make_offer(db, await make_partner(db))
    _, headers = await session_for(client, db)
    claimed = await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    voucher = (await claimed.json())["id"]
    await offers_flow.change(db, None, offer, {"status": "paused"})
    paused = await client.get(f"/v1/me/vouchers/{voucher}/qr.svg", headers=headers)
    assert paused.status == 409
    await offers_flow.change(db, None, offer, {"status": "active"})
    for path in SHOWN_AS:
        response = await client.get(f"/v1/me/vouchers/{voucher}/{path}", headers=headers)
        assert response.status == 200, (path, await response.text())


async def test_every_answer_that_shows_an_offer_carries_its_terms_in_words(
    client: TestClient, admin, db
) -> None:
    """The wallet and the console show these words; they are the directory's words too, so
    no page works them out again (docs/product.md: offer terms)."""
    partner = await make_partner(db)
    offer = await make_offer(
        db,
        partner,
        percent_bp=1000,
        max_discount=5000,
        min_purchase=1000,
        eligible_categories=["veteran"],
        holder_limit_count=2,
        holder_limit_period="month",
        ends_at=datetime(2099, 1, 2, tzinfo=SHANGHAI),
    )
    expected = {
        "zh": "满¥10可用，9折，最多减¥50，有效期至2099年1月1日，限退役军人使用，每人每月限2次",
        "en": "10% off purchases of ¥10 or more, at most ¥50 off, valid through 1 Jan 2099, "
        "for veterans, twice a month per holder",
    }
    _, headers = await session_for(client, db, category="veteran")
    mine = await (await client.get("/v1/me/offers", headers=headers)).json()
    assert mine["items"][0]["terms"] == expected
    claimed = await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    assert (await claimed.json())["offer"]["terms"] == expected
    listed = await (await client.get("/v1/me/vouchers", headers=headers)).json()
    assert listed["items"][0]["offer"]["terms"] == expected
    as_managed = await (await client.get(f"/v1/offers/{offer}", headers=admin)).json()
    assert as_managed["terms"] == expected
    all_offers = await (await client.get(f"/v1/offers?partner_id={partner}", headers=admin)).json()
    assert all_offers["items"][0]["terms"] == expected
    directory = await (await client.get("/v1/directory")).json()
    assert directory["items"][0]["offers"][0]["terms"] == expected


async def test_a_voucher_is_shown_expired_once_the_apps_clock_passes_its_expiry(
    database_url: str, settings, aiohttp_client, db
) -> None:
    """Flows read the time from the app's clock (service/clock.py): setting it is enough,
    nothing waits for the voucher to expire."""
    now = [datetime.now(UTC)]
    client = await aiohttp_client(create_app(settings, database_url, clock=lambda: now[0]))
    offer = await make_offer(db, await make_partner(db))
    _, headers = await session_for(client, db)
    claimed = await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    voucher = await claimed.json()
    assert voucher["status"] == "active"
    now[0] = datetime.fromisoformat(voucher["expires_at"]) + timedelta(seconds=1)
    shown = await client.get(f"/v1/me/vouchers/{voucher['id']}", headers=headers)
    assert (await shown.json())["status"] == "expired"
    token = await client.get(f"/v1/me/vouchers/{voucher['id']}/token", headers=headers)
    assert token.status == 409 and (await token.json())["code"] == "voucher_expired"
