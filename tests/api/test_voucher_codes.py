"""Voucher codes at the till (docs/product.md), double-scan facts, service offers without an amount,
refused redemptions kept and listed, and a till's own day."""

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.db import redemptions as redemptions_db
from service.domain.auth import Role
from tests.helpers import (
    Till,
    _mint,
    bearer,
    code_for,
    make_key,
    make_partner,
    record_redemption,
)


@pytest.fixture
async def till(db, settings) -> Till:
    return await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 500, "min_purchase": 2000, "uses_per_voucher": 2}
    )


async def preview(client, till, scanner=None, **body):
    return await client.post("/v1/redemptions/preview", json=body, headers=scanner or till.scanner)


async def redeem(client, till, scanner=None, key=None, **body):
    return await client.post(
        "/v1/redemptions",
        json=body,
        headers={**(scanner or till.scanner), "Idempotency-Key": key or uuid.uuid4().hex},
    )


async def problem(response, status: int) -> str:
    assert response.status == status, await response.text()
    return (await response.json())["code"]


# --- codes ------------------------------------------------------------------------------


async def test_a_code_previews_and_redeems_like_its_token(client: TestClient, till, db, settings):
    code = await code_for(db, settings, till.voucher_id)
    assert re.fullmatch(r"\d{18}", code)
    shown = await preview(client, till, code=code, purchase_amount=3000)
    assert shown.status == 200, await shown.text()
    assert (await shown.json())["discount_amount"] == 500
    spaced = " ".join(code[i : i + 3] for i in range(0, 18, 3))  # as the wallet groups it
    done = await redeem(client, till, code=spaced, purchase_amount=3000)
    assert done.status == 201, await done.text()
    assert (await done.json())["voucher_id"] == till.voucher_id


async def test_a_new_minting_replaces_the_code_so_one_code_is_live_per_voucher(
    client: TestClient, till, db, settings
) -> None:
    old = await code_for(db, settings, till.voucher_id)
    new = await code_for(db, settings, till.voucher_id)
    assert old != new
    assert await problem(await preview(client, till, code=old, purchase_amount=3000), 422) == (
        "token_invalid"
    )
    assert (await preview(client, till, code=new, purchase_amount=3000)).status == 200
    assert (
        await db.fetchval(
            "SELECT count(*) FROM voucher_codes WHERE voucher_id = $1", till.voucher_id
        )
        == 1
    )


async def test_codes_are_stored_only_as_hashes(till, db, settings) -> None:
    code = await code_for(db, settings, till.voucher_id)
    row = await db.fetchrow("SELECT * FROM voucher_codes WHERE voucher_id = $1", till.voucher_id)
    assert code.encode() not in bytes(row["code_hash"]) and len(row["code_hash"]) == 32


async def test_a_code_lives_exactly_as_long_as_its_token(client: TestClient, till, db, settings):
    code = await code_for(db, settings, till.voucher_id)
    expires = await db.fetchval(
        "SELECT expires_at FROM voucher_codes WHERE voucher_id = $1", till.voucher_id
    )
    assert timedelta(seconds=settings.token_ttl - 5) < expires - datetime.now(UTC)
    assert expires - datetime.now(UTC) <= timedelta(seconds=settings.token_ttl)
    await db.execute(
        "UPDATE voucher_codes SET issued_at = issued_at - (expires_at - now()) - $2::interval,"
        " expires_at = now() - $2::interval WHERE voucher_id = $1",
        till.voucher_id,
        timedelta(seconds=6),
    )
    refused = await preview(client, till, code=code, purchase_amount=3000)
    assert await problem(refused, 422) == "token_expired"


async def test_after_a_shorter_ttl_a_code_is_refused_as_its_token_is(
    aiohttp_client, client: TestClient, database_url, till, db, settings
) -> None:
    """docs/product.md: a code is valid exactly as long as its token; a token whose lifetime exceeds
    the configured TTL is refused, so after a restart with a shorter YOUDAI_TOKEN_TTL a code
    minted under the longer one is refused the same way."""
    minted = await _mint(db, settings, till.voucher_id)
    restarted = await aiohttp_client(
        create_app(dataclasses.replace(settings, token_ttl=60), database_url)
    )
    for body in ({"token": minted.token}, {"code": minted.code}):
        for send in (preview, redeem):
            refused = await send(restarted, till, purchase_amount=3000, **body)
            assert await problem(refused, 422) == "token_invalid", body
    # Under the TTL it was minted with, the same code and token are still good.
    for body in ({"token": minted.token}, {"code": minted.code}):
        assert (await preview(client, till, purchase_amount=3000, **body)).status == 200
    issued, expires = await db.fetchrow(
        "SELECT issued_at, expires_at FROM voucher_codes WHERE voucher_id = $1", till.voucher_id
    )
    assert expires - issued == timedelta(seconds=settings.token_ttl)  # the token's exp - iat


async def test_a_code_of_another_partners_voucher_is_wrong_partner(
    client: TestClient, till, db, settings
) -> None:
    other = await Till(db, settings).open()
    code = await code_for(db, settings, other.voucher_id)
    assert await problem(await preview(client, till, code=code, purchase_amount=3000), 403) == (
        "wrong_partner"
    )
    assert await problem(await redeem(client, till, code=code, purchase_amount=3000), 403) == (
        "wrong_partner"
    )


async def test_a_code_keeps_the_rule_order_and_problem_codes(
    client: TestClient, till, db, settings
) -> None:
    code = await code_for(db, settings, till.voucher_id)
    low = await preview(client, till, code=code, purchase_amount=1000)
    assert await problem(low, 422) == "below_min_purchase"
    await db.execute("UPDATE holders SET status = 'suspended' WHERE id = $1", till.holder_id)
    await db.execute("UPDATE vouchers SET status = 'revoked' WHERE id = $1", till.voucher_id)
    both = await redeem(client, till, code=code, purchase_amount=1000)
    assert await problem(both, 409) == "voucher_revoked"  # voucher before holder and limits


async def test_a_body_names_a_token_or_a_code_never_both(client: TestClient, till, db, settings):
    code = await code_for(db, settings, till.voucher_id)
    for body in ({"token": till.token, "code": code}, {}, {"code": "12345"}):
        response = await preview(client, till, purchase_amount=3000, **body)
        assert await problem(response, 422) == "validation_error"


@pytest.fixture
async def one_minute(database_url, settings, aiohttp_client) -> TestClient:
    """A client whose service's clock stands still at the instant it was made: every
    request it sends falls in one calendar minute, however long the test takes."""
    instant = datetime.now(UTC)
    return await aiohttp_client(create_app(settings, database_url, clock=lambda: instant))


async def test_twenty_unknown_codes_in_a_minute_refuse_that_key_for_the_minute(
    one_minute: TestClient, till, db, settings
) -> None:
    client = one_minute
    good = await code_for(db, settings, till.voucher_id)
    for n in range(20):
        unknown = f"{n:018d}"
        assert await problem(
            await preview(client, till, code=unknown, purchase_amount=3000), 422
        ) == ("token_invalid")
    blocked = await preview(client, till, code=good, purchase_amount=3000)
    assert await problem(blocked, 429) == "too_many_attempts"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 61
    assert await problem(await redeem(client, till, code=good, purchase_amount=3000), 429) == (
        "too_many_attempts"
    )
    # Counted in PostgreSQL, per key: another till of the partner goes on; tokens too.
    other = bearer(await make_key(db, Role.SCANNER, till.partner_id))
    assert (
        await preview(client, till, scanner=other, code=good, purchase_amount=3000)
    ).status == 200
    assert (await preview(client, till, token=till.token, purchase_amount=3000)).status == 200
    assert await db.fetchval("SELECT sum(misses) FROM scanner_code_misses") == 20


async def test_a_partners_keys_together_are_refused_at_the_partner_limit(
    one_minute: TestClient, till, db, settings
) -> None:
    """Minting keys does not multiply the per-key limit: 60 unknown codes a minute from all
    of one partner's scanner keys (each under its own 20) refuse every one of its keys,
    a fresh one too, for the rest of the minute; another partner's tills go on."""
    partner_limit, key_limit = 60, 20
    good = await code_for(db, settings, till.voucher_id)
    keys = [
        bearer(await make_key(db, Role.SCANNER, till.partner_id))
        for _ in range(partner_limit // (key_limit - 1) + 1)
    ]
    client = one_minute
    for n in range(partner_limit):
        scanner = keys[n // (key_limit - 1)]  # 19 from each key: never its own limit
        unknown = f"{n:018d}"
        refused = await preview(client, till, scanner=scanner, code=unknown, purchase_amount=3000)
        assert await problem(refused, 422) == "token_invalid", n
    fresh = bearer(await make_key(db, Role.SCANNER, till.partner_id))
    for scanner in (keys[0], keys[-1], fresh, till.scanner):
        blocked = await preview(client, till, scanner=scanner, code=good, purchase_amount=3000)
        assert await problem(blocked, 429) == "too_many_attempts"
        assert 1 <= int(blocked.headers["Retry-After"]) <= 61
    assert (
        await preview(client, till, scanner=fresh, token=till.token, purchase_amount=3000)
    ).status == 200
    other = await Till(db, settings).open()
    other_code = await code_for(db, settings, other.voucher_id)
    assert (await preview(client, other, code=other_code, purchase_amount=3000)).status == 200


async def test_the_minute_over_the_key_may_send_codes_again(client: TestClient, till, db, settings):
    good = await code_for(db, settings, till.voucher_id)
    key_id = await db.fetchval(
        "SELECT id FROM api_keys WHERE partner_id = $1 AND role = 'scanner'", till.partner_id
    )
    await db.execute(
        "INSERT INTO scanner_code_misses "
        "VALUES ($1, date_trunc('minute', now()) - interval '1 minute', 20)",
        key_id,
    )
    assert (await preview(client, till, code=good, purchase_amount=3000)).status == 200


# --- double scans and service offers -----------------------------------------------------


async def test_preview_tells_when_the_voucher_was_last_redeemed(client: TestClient, till) -> None:
    assert (await (await preview(client, till, token=till.token, purchase_amount=3000)).json())[
        "last_redeemed_at"
    ] is None
    done = await (await redeem(client, till, token=till.token, purchase_amount=3000)).json()
    again = await (await preview(client, till, token=till.token, purchase_amount=3000)).json()
    last = datetime.fromisoformat(again["last_redeemed_at"])
    assert last == datetime.fromisoformat(done["created_at"])
    await client.post(f"/v1/redemptions/{done['id']}/reversal", json={}, headers=till.scanner)
    reversed_ = await (await preview(client, till, token=till.token, purchase_amount=3000)).json()
    assert reversed_["last_redeemed_at"] is None  # a reversed redemption is no double scan


async def test_a_service_offer_needs_no_amount_and_counts_its_nominal_value(
    client: TestClient, db, settings, admin
) -> None:
    till = await Till(db, settings).open(offer={"kind": "service", "nominal_value": 500})
    shown = await preview(client, till, token=till.token)
    assert shown.status == 200, await shown.text()
    assert {k: v for k, v in (await shown.json()).items() if "amount" in k} == {
        "purchase_amount": 0,
        "discount_amount": 500,
        "payable_amount": 0,
    }
    done = await redeem(client, till, token=till.token)
    assert done.status == 201, await done.text()
    year = datetime.now(settings.timezone).year
    report = await (
        await client.get(
            f"/v1/reports/discounts?group_by=offer&from={year}-01-01&to={year}-12-31", headers=admin
        )
    ).json()
    assert report["totals"]["discount_total"] == 500


async def test_a_priced_offer_still_needs_an_amount(client: TestClient, till) -> None:
    response = await preview(client, till, token=till.token)
    assert await problem(response, 422) == "validation_error"
    assert (await response.json())["errors"][0]["field"] == "purchase_amount"


# --- refusals -----------------------------------------------------------------------------


async def test_refusals_of_known_vouchers_are_kept_without_holder_data(
    client: TestClient, till, db, admin
) -> None:
    await preview(client, till, token=till.token, purchase_amount=1000)  # below the minimum
    await db.execute("UPDATE vouchers SET status = 'revoked' WHERE id = $1", till.voucher_id)
    await redeem(client, till, token=till.token, purchase_amount=3000)
    await preview(client, till, token="not a token", purchase_amount=3000)  # no voucher known
    rows = await db.fetch("SELECT * FROM redemption_refusals ORDER BY id")
    assert [(r["code"], r["stage"]) for r in rows] == [
        ("below_min_purchase", "preview"),
        ("voucher_revoked", "redeem"),
    ]
    assert {r["offer_id"] for r in rows} == {till.offer_id}
    assert set(rows[0].keys()) == {
        "id",
        "partner_id",
        "offer_id",
        "scanner_key_id",
        "code",
        "stage",
        "created_at",
    }
    listed = await (await client.get("/v1/redemption-refusals", headers=till.partner)).json()
    assert [item["code"] for item in listed["items"]] == ["voucher_revoked", "below_min_purchase"]
    text = str(listed)
    holder = await db.fetchrow("SELECT * FROM holders WHERE id = $1", till.holder_id)
    for private in (till.holder_id, holder["card_number"], holder["display_name"]):
        assert private not in text
    summary = await (await client.get("/v1/reports/summary", headers=admin)).json()
    assert summary["refusals"] == 2


async def test_refusal_list_is_own_for_partners_filterable_and_paged(
    client: TestClient, till, db, settings, admin
) -> None:
    other = await Till(db, settings).open()
    for _ in range(3):
        await preview(client, till, token=till.token, purchase_amount=1000)
    await db.execute("UPDATE vouchers SET status = 'revoked' WHERE id = $1", other.voucher_id)
    await preview(client, other, token=other.token, purchase_amount=3000)
    mine = await (await client.get("/v1/redemption-refusals", headers=till.partner)).json()
    assert len(mine["items"]) == 3 and {i["partner_id"] for i in mine["items"]} == {till.partner_id}
    theirs = await client.get(
        f"/v1/redemption-refusals?partner_id={other.partner_id}", headers=till.partner
    )
    assert (await theirs.json())["items"] == []
    every = await (await client.get("/v1/redemption-refusals", headers=admin)).json()
    assert len(every["items"]) == 4
    revoked = await client.get("/v1/redemption-refusals?code=voucher_revoked", headers=admin)
    assert [i["partner_id"] for i in (await revoked.json())["items"]] == [other.partner_id]
    first = await (await client.get("/v1/redemption-refusals?limit=2", headers=admin)).json()
    rest = await (
        await client.get(
            f"/v1/redemption-refusals?limit=2&cursor={first['next_cursor']}", headers=admin
        )
    ).json()
    assert len(first["items"]) == 2 and len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert (await client.get("/v1/redemption-refusals", headers=till.scanner)).status == 403


async def test_a_refusal_that_cannot_be_recorded_is_answered_the_same(
    client: TestClient, till, monkeypatch
) -> None:
    async def broken(conn, refusal) -> None:
        raise asyncpg.PostgresError("the disk is full")

    monkeypatch.setattr(redemptions_db, "record_refusal", broken)
    response = await preview(client, till, token=till.token, purchase_amount=1000)
    assert await problem(response, 422) == "below_min_purchase"
    response = await redeem(client, till, token=till.token, purchase_amount=1000)
    assert await problem(response, 422) == "below_min_purchase"


# --- a till's own day -------------------------------------------------------------------


async def test_a_till_knows_whose_key_it_holds(client: TestClient, till) -> None:
    response = await client.get("/v1/till", headers=till.scanner)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["partner_name"] == "老兵饭店" and body["label"] == "test scanner"
    assert body["partner_id"] == till.partner_id
    assert (await client.get("/v1/till", headers=till.partner)).status == 403


async def test_a_till_lists_only_its_own_keys_redemptions_of_today(
    client: TestClient, till, db, settings
) -> None:
    # Yesterday's redemption by this same key (the partner's only scanner key so far).
    await record_redemption(db, settings, till.voucher_id, at=datetime.now(UTC) - timedelta(days=1))
    second = await (await redeem(client, till, token=till.token, purchase_amount=4000)).json()
    other_till = bearer(await make_key(db, Role.SCANNER, till.partner_id))
    _, token = await till.new_voucher()
    await redeem(client, till, scanner=other_till, token=token, purchase_amount=3000)
    response = await client.get("/v1/till/redemptions", headers=till.scanner)
    assert response.status == 200, await response.text()
    items = (await response.json())["items"]
    assert [i["id"] for i in items] == [second["id"]]
    assert items[0]["offer_title"] and items[0]["status"] == "completed"
    assert (await client.get("/v1/till/redemptions", headers=till.partner)).status == 403
    partner = await make_partner(db, name="别家")
    stranger = bearer(await make_key(db, Role.SCANNER, partner))
    assert (await (await client.get("/v1/till/redemptions", headers=stranger)).json())[
        "items"
    ] == []
