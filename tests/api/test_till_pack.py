"""GET /v1/till/pack (docs/api.md): what a till needs offline, and nothing about holders."""

from datetime import datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from service.domain.auth import Role
from tests.helpers import Till, bearer, make_holder, make_key, make_offer, make_voucher, token_for


@pytest.fixture
async def till(db, settings) -> Till:
    return await Till(db, settings).open(
        offer={
            "kind": "percent_off",
            "percent_bp": 1000,
            "max_discount": 5000,
            "min_purchase": 1000,
            "holder_limit_count": 2,
            "holder_limit_period": "month",
            "total_redemptions": 100,
            "budget": 50000,
        }
    )


async def get_pack(client: TestClient, headers) -> dict:
    response = await client.get("/v1/till/pack", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    return await response.json()


async def test_pack_names_the_till_its_offers_and_the_published_keys(
    client: TestClient, till: Till, db
) -> None:
    draft = await make_offer(db, till.partner_id, status="draft", title="草稿")
    paused = await make_offer(db, till.partner_id, status="paused", title="暂停")
    other_partner = await Till(db, till.settings).open()
    pack = await get_pack(client, till.scanner)
    key_id = await db.fetchval(
        "SELECT id FROM api_keys WHERE role = 'scanner' AND partner_id = $1", till.partner_id
    )
    assert pack["partner"] == {"id": till.partner_id, "name": "老兵饭店"}
    assert pack["till"]["id"] == key_id and pack["till"]["label"]
    assert [offer["id"] for offer in pack["offers"]] == [till.offer_id]
    assert draft not in str(pack) and paused not in str(pack)
    assert other_partner.offer_id not in str(pack)
    offer = pack["offers"][0]
    assert {
        key: offer[key]
        for key in ("kind", "percent_bp", "max_discount", "min_purchase", "holder_limit")
    } == {
        "kind": "percent_off",
        "percent_bp": 1000,
        "max_discount": 5000,
        "min_purchase": 1000,
        "holder_limit": {"count": 2, "period": "month"},
    }
    assert offer["terms"]["zh"].startswith("满¥10") and "10% off" in offer["terms"]["en"]
    assert "redeemed_count" not in offer and "spent" not in offer
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    assert pack["jwks"] == jwks
    server_time = datetime.fromisoformat(pack["server_time"])
    assert datetime.fromisoformat(pack["valid_until"]) - server_time == timedelta(hours=24)


async def test_pack_lists_the_vouchers_a_till_must_refuse_and_no_holder_data(
    client: TestClient, till: Till, db, settings
) -> None:
    usable, _ = await till.new_voucher()
    used_up, token = await till.new_voucher(display_name="李秀英")
    response = await client.post(
        "/v1/redemptions",
        json={"token": token, "purchase_amount": 2000},
        headers={**till.scanner, "Idempotency-Key": "k"},
    )
    assert response.status == 201
    revoked, _ = await till.new_voucher()
    await db.execute("UPDATE vouchers SET status = 'revoked' WHERE id = $1", revoked)
    expired, _ = await till.new_voucher()
    await db.execute("UPDATE vouchers SET expires_at = now() WHERE id = $1", expired)
    suspended_holder = await make_holder(db, display_name="张卫东")
    suspended = await make_voucher(db, settings, suspended_holder, till.offer_id)
    await token_for(db, settings, suspended)
    await db.execute("UPDATE holders SET status = 'suspended' WHERE id = $1", suspended_holder)
    # Unusable, but its newest token expired long ago: no till can be shown a live one.
    stale, _ = await till.new_voucher()
    await db.execute("UPDATE vouchers SET status = 'revoked' WHERE id = $1", stale)
    await db.execute(
        "UPDATE voucher_codes SET issued_at = now() - interval '2 hours', "
        "expires_at = now() - interval '1 hour' WHERE voucher_id = $1",
        stale,
    )
    other = await Till(db, settings).open()
    await db.execute("UPDATE vouchers SET status = 'revoked' WHERE id = $1", other.voucher_id)

    pack = await get_pack(client, till.scanner)
    assert sorted(pack["revoked_vouchers"]) == sorted([used_up, revoked, expired, suspended])
    assert (
        usable not in pack["revoked_vouchers"] and till.voucher_id not in pack["revoked_vouchers"]
    )
    text = await (await client.get("/v1/till/pack", headers=till.scanner)).text()
    holders = await db.fetch("SELECT id, card_number, display_name, region FROM holders")
    for holder in holders:
        for private in (holder["id"], holder["card_number"], holder["display_name"]):
            assert private not in text
    assert "holder_id" not in text and "card_number" not in text and "display_name" not in text


async def test_a_suspended_partner_s_till_gets_no_offers(
    client: TestClient, till: Till, db
) -> None:
    await db.execute("UPDATE partners SET status = 'suspended' WHERE id = $1", till.partner_id)
    assert (await get_pack(client, till.scanner))["offers"] == []


@pytest.mark.parametrize("role", [Role.ADMIN, Role.PARTNER])
async def test_only_a_scanner_key_gets_a_pack(client: TestClient, till: Till, db, role) -> None:
    key = await make_key(db, role, None if role == Role.ADMIN else till.partner_id)
    response = await client.get("/v1/till/pack", headers=bearer(key))
    assert response.status == 403
    assert (await response.json())["code"] == "forbidden"
    assert (await client.get("/v1/till/pack")).status == 401


async def test_a_holder_gets_no_pack(client: TestClient, db) -> None:
    await make_holder(db, card_number="PACK-0001")
    session = await client.post(
        "/v1/holder-sessions", json={"card_number": "PACK-0001", "pin": "204816"}
    )
    token = (await session.json())["token"]
    response = await client.get("/v1/till/pack", headers=bearer(token))
    assert response.status == 403
