"""Offline redemptions (docs/rules.md): a till that lost its network sends them later with
`offline_at`; a valid token of the partner's offer is always recorded, with the first
rule it broke as `conflict`, and every counter and total stays exact."""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.db import reconcile
from service.domain import tokens
from service.flows.keyring import Keyring
from service.sealing import make_sealer
from tests.helpers import (
    Till,
    fold_all,
    make_holder,
    make_offer,
    make_partner,
    make_voucher,
    token_for,
)


@pytest.fixture
async def till(db, settings) -> Till:
    return await Till(db, settings).open(offer={"kind": "percent_off", "percent_bp": 1500})


def now() -> datetime:
    return datetime.now(UTC)


async def redeem(client, till, *, offline_at=None, token=None, amount=10000, key=None, **extra):
    body = {"token": token or till.token, "purchase_amount": amount, **extra}
    if offline_at is not None:
        body["offline_at"] = offline_at if isinstance(offline_at, str) else offline_at.isoformat()
    return await client.post(
        "/v1/redemptions",
        json=body,
        headers={**till.scanner, "Idempotency-Key": key or uuid.uuid4().hex},
    )


async def created(response) -> dict:
    assert response.status == 201, await response.text()
    return await response.json()


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    return await response.json()


async def assert_reconciled(db: asyncpg.Connection) -> None:
    assert await reconcile.mismatches(db) == {}


async def minted_at(db, settings, till: Till, at: datetime) -> str:
    """A token for the till's voucher as if minted at `at` (a till offline scanned it then)."""
    keyring = Keyring(settings.token_ttl, make_sealer(settings.secret_key, settings.data_dir))
    token, _ = tokens.mint(
        await keyring.signing_key(db),
        voucher_id=till.voucher_id,
        partner_id=till.partner_id,
        offer_id=till.offer_id,
        issuer=settings.issuer,
        ttl_seconds=settings.token_ttl,
        now=at,
    )
    return token


async def test_offline_redemption_is_recorded_with_when_it_was_made(
    client: TestClient, till: Till, db
) -> None:
    made = now()
    body = await created(await redeem(client, till, offline_at=made))
    assert body["offline_at"] == made.isoformat()
    assert body["conflict"] is None
    assert body["discount_amount"] == 1500 and body["payable_amount"] == 8500
    assert datetime.fromisoformat(body["created_at"]) >= made
    row = await db.fetchrow("SELECT offline_at, conflict FROM redemptions")
    assert (row["offline_at"], row["conflict"]) == (made, None)
    await fold_all(db)  # the rollups follow the ledger off the request path (0021)
    rollup = await db.fetchrow("SELECT offline, conflicts FROM discount_rollup")
    assert (rollup["offline"], rollup["conflicts"]) == (1, 0)
    online = await created(await redeem(client, till, token=(await till.new_voucher())[1]))
    assert online["offline_at"] is None and online["conflict"] is None
    await assert_reconciled(db)


async def test_a_used_up_voucher_redeemed_offline_is_recorded_with_its_conflict(
    client: TestClient, till: Till, db
) -> None:
    await created(await redeem(client, till))
    body = await created(await redeem(client, till, offline_at=now()))
    assert body["conflict"] == "voucher_used_up"
    assert body["uses_left"] == 0
    third = await created(await redeem(client, till, offline_at=now()))
    assert third["conflict"] == "voucher_used_up"
    voucher = await db.fetchrow("SELECT uses_left, uses_over, status FROM vouchers")
    assert (voucher["uses_left"], voucher["uses_over"], voucher["status"]) == (0, 2, "used_up")
    offer = await db.fetchrow("SELECT redeemed_count, spent FROM offers")
    assert (offer["redeemed_count"], offer["spent"]) == (3, 4500)
    await fold_all(db)  # the rollups follow the ledger off the request path (0021)
    rollup = await db.fetchrow("SELECT redemptions, offline, conflicts FROM discount_rollup")
    assert tuple(rollup) == (3, 2, 2)
    await assert_reconciled(db)


async def test_reversing_a_conflict_gives_back_the_use_past_the_allowance_first(
    client: TestClient, till: Till, db
) -> None:
    first = await created(await redeem(client, till))
    conflict = await created(await redeem(client, till, offline_at=now()))
    reversal = await client.post(
        f"/v1/redemptions/{conflict['id']}/reversal",
        json={"reason": "double"},
        headers=till.partner,
    )
    assert reversal.status == 201, await reversal.text()
    voucher = await db.fetchrow("SELECT uses_left, uses_over, status FROM vouchers")
    assert tuple(voucher) == (0, 0, "used_up")  # the first redemption still holds its use
    await assert_reconciled(db)
    reversal = await client.post(
        f"/v1/redemptions/{first['id']}/reversal", json={"reason": "refund"}, headers=till.partner
    )
    assert reversal.status == 201
    voucher = await db.fetchrow("SELECT uses_left, uses_over, status FROM vouchers")
    assert tuple(voucher) == (1, 0, "active")
    await assert_reconciled(db)


async def test_token_expiry_is_judged_when_the_till_made_it(
    client: TestClient, till: Till, db, settings
) -> None:
    made = now() - timedelta(hours=3)
    token = await minted_at(db, settings, till, made - timedelta(seconds=30))
    # Online that token expired hours ago; the till scanned it while it was alive.
    online = await redeem(client, till, token=token)
    assert (await problem(online, 422))["code"] == "token_expired"
    body = await created(await redeem(client, till, token=token, offline_at=made))
    assert body["conflict"] is None
    stale = made + timedelta(seconds=settings.token_ttl + 60)
    late = await redeem(client, till, token=token, offline_at=stale)
    assert (await problem(late, 422))["code"] == "token_expired"


async def test_a_token_of_another_partner_is_refused_offline_too(
    client: TestClient, till: Till, db, settings
) -> None:
    other = await make_partner(db, name="另一家", category="retail")
    offer = await make_offer(db, other)
    voucher = await make_voucher(db, settings, await make_holder(db), offer)
    token = await token_for(db, settings, voucher)
    refused = await redeem(client, till, token=token, offline_at=now())
    assert (await problem(refused, 403))["code"] == "wrong_partner"
    forged = await redeem(client, till, token=till.token[:-4] + "AAAA", offline_at=now())
    assert (await problem(forged, 422))["code"] == "token_invalid"
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 0


@pytest.mark.parametrize(
    ("offline_at", "accepted"),
    [
        (timedelta(hours=-73), False),
        (timedelta(hours=-71), True),
        (timedelta(minutes=4), True),
        (timedelta(minutes=6), False),
    ],
)
async def test_offline_at_must_be_within_72_hours_and_not_in_the_future(
    client: TestClient, till: Till, db, settings, offline_at: timedelta, accepted: bool
) -> None:
    made = now() + offline_at
    token = await minted_at(db, settings, till, made - timedelta(seconds=5))
    response = await redeem(client, till, token=token, offline_at=made)
    if accepted:
        await created(response)
    else:
        body = await problem(response, 422)
        assert body["code"] == "validation_error"
        assert [error["field"] for error in body["errors"]] == ["offline_at"]


@pytest.mark.parametrize("bad", ["yesterday", "2026-12-06T10:00:00", 1733480000, None])
async def test_offline_at_must_be_an_rfc3339_instant(client: TestClient, till: Till, bad) -> None:
    response = await client.post(
        "/v1/redemptions",
        json={"token": till.token, "purchase_amount": 100, "offline_at": bad},
        headers={**till.scanner, "Idempotency-Key": "k"},
    )
    body = await problem(response, 422)
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "offline_at"


async def test_a_voucher_code_cannot_be_sent_as_offline(client: TestClient, till: Till) -> None:
    response = await client.post(
        "/v1/redemptions",
        json={"code": "0" * 18, "purchase_amount": 100, "offline_at": now().isoformat()},
        headers={**till.scanner, "Idempotency-Key": "k"},
    )
    body = await problem(response, 422)
    assert body["errors"][0]["field"] == "offline_at"


async def test_preview_takes_no_offline_at(client: TestClient, till: Till) -> None:
    response = await client.post(
        "/v1/redemptions/preview",
        json={"token": till.token, "purchase_amount": 100, "offline_at": now().isoformat()},
        headers=till.scanner,
    )
    assert (await problem(response, 422))["code"] == "validation_error"


async def test_replay_answers_the_first_result(client: TestClient, till: Till, db) -> None:
    await created(await redeem(client, till))
    made = now()
    first = await redeem(client, till, offline_at=made, key="till-2-offline-7")
    again = await redeem(client, till, offline_at=made, key="till-2-offline-7")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await created(again) == await created(first)
    # The same instant in another offset is the same request.
    shifted = made.astimezone(ZoneInfo("Asia/Shanghai"))
    same = await redeem(client, till, offline_at=shifted, key="till-2-offline-7")
    assert same.headers["Idempotent-Replayed"] == "true"
    other = await redeem(
        client, till, offline_at=made - timedelta(seconds=1), key="till-2-offline-7"
    )
    assert (await problem(other, 422))["code"] == "idempotency_key_reused"
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 2


async def test_below_the_minimum_spend_is_refused_and_not_recorded(
    client: TestClient, db, settings
) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 500, "min_purchase": 2000}
    )
    refused = await redeem(client, till, amount=1999, offline_at=now())
    body = await problem(refused, 422)
    assert body["code"] == "below_min_purchase" and body["min_purchase"] == 2000
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 0
    # The refusal is logged as any other, and replayed.
    assert await db.fetchval("SELECT code FROM redemption_refusals") == "below_min_purchase"


async def _arrange(db: asyncpg.Connection, till: Till, client: TestClient, rule: str) -> None:
    """Make the till's voucher break `rule` (and nothing before it) online."""
    if rule == "partner_inactive":
        await db.execute("UPDATE partners SET status = 'suspended' WHERE id = $1", till.partner_id)
    elif rule == "voucher_revoked":
        await db.execute("UPDATE vouchers SET status = 'revoked' WHERE id = $1", till.voucher_id)
    elif rule == "voucher_expired":
        await db.execute(
            "UPDATE vouchers SET expires_at = now() - interval '1 minute' WHERE id = $1",
            till.voucher_id,
        )
    elif rule == "holder_inactive":
        await db.execute("UPDATE holders SET status = 'suspended' WHERE id = $1", till.holder_id)
    elif rule == "holder_ineligible":
        await db.execute(
            "UPDATE offers SET eligible_categories = '{martyr_family}' WHERE id = $1", till.offer_id
        )
    elif rule == "offer_inactive":
        await db.execute("UPDATE offers SET status = 'paused' WHERE id = $1", till.offer_id)
    elif rule == "holder_limit_reached":
        await db.execute(
            "UPDATE offers SET holder_limit_count = 1, holder_limit_period = 'day' WHERE id = $1",
            till.offer_id,
        )
        await db.execute("UPDATE vouchers SET uses_left = 2, uses_total = 2")
        await created(await redeem(client, till))
    elif rule == "offer_exhausted":
        await db.execute("UPDATE offers SET total_redemptions = 1 WHERE id = $1", till.offer_id)
        await created(await redeem(client, till, token=(await till.new_voucher())[1]))
    elif rule == "budget_exhausted":
        await db.execute("UPDATE offers SET budget = 2000 WHERE id = $1", till.offer_id)
        await created(await redeem(client, till, token=(await till.new_voucher())[1]))


@pytest.mark.parametrize(
    "rule",
    [
        "partner_inactive",
        "voucher_revoked",
        "voucher_expired",
        "holder_inactive",
        "holder_ineligible",
        "offer_inactive",
        "holder_limit_reached",
        "offer_exhausted",
        "budget_exhausted",
    ],
)
async def test_each_rule_broken_offline_is_recorded_as_its_conflict(
    client: TestClient, till: Till, db, rule: str
) -> None:
    made = now()
    await _arrange(db, till, client, rule)
    online = await redeem(client, till)
    assert (await problem(online, 409))["code"] == rule
    before = await db.fetchrow(
        "SELECT redeemed_count, spent FROM offers WHERE id = $1", till.offer_id
    )
    body = await created(await redeem(client, till, offline_at=made))
    assert body["conflict"] == rule
    after = await db.fetchrow(
        "SELECT redeemed_count, spent FROM offers WHERE id = $1", till.offer_id
    )
    assert after["redeemed_count"] == before["redeemed_count"] + 1
    assert after["spent"] == before["spent"] + body["discount_amount"]
    await assert_reconciled(db)


async def test_the_first_rule_in_order_names_the_conflict(
    client: TestClient, till: Till, db
) -> None:
    await created(await redeem(client, till))  # used up (voucher) …
    await db.execute("UPDATE holders SET status = 'revoked'")  # … and holder revoked
    body = await created(await redeem(client, till, offline_at=now()))
    assert body["conflict"] == "voucher_used_up"


async def test_conflicts_are_listed_for_the_bureau(
    client: TestClient, till: Till, db, admin
) -> None:
    online = await created(await redeem(client, till))
    conflict = await created(await redeem(client, till, offline_at=now()))
    _, token = await till.new_voucher()
    offline = await created(await redeem(client, till, token=token, offline_at=now()))
    listed = await client.get("/v1/redemptions?conflict=true", headers=admin)
    assert [item["id"] for item in (await listed.json())["items"]] == [conflict["id"]]
    listed = await client.get("/v1/redemptions?offline=true", headers=admin)
    assert [item["id"] for item in (await listed.json())["items"]] == [
        offline["id"],
        conflict["id"],
    ]
    listed = await client.get("/v1/redemptions?offline=false", headers=till.partner)
    assert [item["id"] for item in (await listed.json())["items"]] == [online["id"]]
    one = await (await client.get(f"/v1/redemptions/{conflict['id']}", headers=admin)).json()
    assert one["conflict"] == "voucher_used_up" and one["offline_at"] == conflict["offline_at"]
    assert one["created_at"] == conflict["created_at"]
    today = await (await client.get("/v1/till/redemptions", headers=till.scanner)).json()
    assert {item["id"]: item["conflict"] for item in today["items"]}[conflict["id"]] == (
        "voucher_used_up"
    )
    bad = await client.get("/v1/redemptions?conflict=yes", headers=admin)
    assert bad.status == 422


async def test_the_ledger_leaf_carries_offline_facts_only_when_set(
    client: TestClient, till: Till, db
) -> None:

    online = await created(await redeem(client, till))
    conflict = await created(await redeem(client, till, offline_at=now()))
    leaves = {}
    for _ in range(100):
        rows = await db.fetch("SELECT entry_id, leaf FROM ledger_entries")
        leaves = {row["entry_id"]: json.loads(row["leaf"]) for row in rows}
        if len(leaves) == 2:
            break
        await asyncio.sleep(0.1)
    assert "offline_at" not in leaves[online["id"]] and "conflict" not in leaves[online["id"]]
    assert leaves[conflict["id"]]["conflict"] == "voucher_used_up"
    assert leaves[conflict["id"]]["offline_at"].endswith("Z")


async def test_an_offer_taken_past_its_budget_offline_can_still_be_managed(
    client: TestClient, till: Till, db
) -> None:
    await db.execute("UPDATE offers SET budget = 2000 WHERE id = $1", till.offer_id)
    await created(await redeem(client, till, amount=10000))  # 1500 of 2000
    _, token = await till.new_voucher()
    body = await created(await redeem(client, till, token=token, offline_at=now()))
    assert body["conflict"] == "budget_exhausted"
    offer = await db.fetchrow("SELECT spent, conflict_spent, budget FROM offers")
    assert tuple(offer) == (3000, 1500, 2000)
    paused = await client.patch(
        f"/v1/offers/{till.offer_id}", json={"status": "paused"}, headers=till.partner
    )
    assert paused.status == 200, await paused.text()
    lowered = await client.patch(
        f"/v1/offers/{till.offer_id}", json={"budget": 1900}, headers=till.partner
    )
    assert lowered.status == 409
    # Online, the database still refuses one fen past the budget for what is not a conflict.
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE offers SET spent = spent + 501 WHERE id = $1", till.offer_id)
    await assert_reconciled(db)


async def test_reports_and_the_summary_count_offline_redemptions_and_conflicts(
    client: TestClient, till: Till, db, admin
) -> None:
    await created(await redeem(client, till))
    await created(await redeem(client, till, offline_at=now()))  # voucher_used_up
    _, token = await till.new_voucher()
    await created(await redeem(client, till, token=token, offline_at=now()))
    year = {"from": f"{now().year}-01-01", "to": f"{now().year}-12-31"}
    report = await (
        await client.get(
            "/v1/reports/discounts", params={**year, "group_by": "offer"}, headers=admin
        )
    ).json()
    assert [(r["redemptions"], r["offline"], r["conflicts"]) for r in report["rows"]] == [(3, 2, 1)]
    assert (report["totals"]["offline"], report["totals"]["conflicts"]) == (2, 1)
    own = await (
        await client.get("/v1/reports/discounts", params=year, headers=till.partner)
    ).json()
    assert (own["totals"]["offline"], own["totals"]["conflicts"]) == (2, 1)
    summary = await (await client.get("/v1/reports/summary", params=year, headers=admin)).json()
    assert (summary["redemptions"], summary["offline"], summary["conflicts"]) == (3, 2, 1)
    csv_text = await (
        await client.get("/v1/reports/discounts", params={**year, "format": "csv"}, headers=admin)
    ).text()
    header, values = csv_text.lstrip("\ufeff").splitlines()[:2]
    assert dict(zip(header.split(","), values.split(","), strict=True))["conflicts"] == "1"


async def test_a_token_signed_by_a_key_retired_since_is_accepted_offline(
    client: TestClient, till: Till, db, settings
) -> None:
    """The JWKS stops publishing a retired key minutes after its last tokens expire; an
    offline redemption arrives hours later and is judged with the keys of its moment."""
    made = now() - timedelta(hours=3)
    token = await minted_at(db, settings, till, made - timedelta(seconds=10))
    keyring = Keyring(settings.token_ttl, make_sealer(settings.secret_key, settings.data_dir))
    retired, _ = await keyring.rotate(db)
    await db.execute(
        "UPDATE signing_keys SET retired_at = now() - interval '2 hours' WHERE kid = $1", retired
    )
    body = await created(await redeem(client, till, token=token, offline_at=made))
    assert body["conflict"] is None
    # Made after the key's tokens had all expired: that token was not the programme's.
    late = made + timedelta(hours=2)
    refused = await redeem(client, till, token=token, offline_at=late)
    assert (await problem(refused, 422))["code"] in ("token_invalid", "token_expired")
    published = await (await client.get("/.well-known/jwks.json")).json()
    assert retired not in [key["kid"] for key in published["keys"]]


@pytest.mark.parametrize("extreme", ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"])
async def test_an_offline_at_at_the_ends_of_time_is_a_validation_error(
    client: TestClient, till: Till, extreme: str
) -> None:
    body = await problem(await redeem(client, till, offline_at=extreme), 422)
    assert body["code"] == "validation_error"
    assert [error["field"] for error in body["errors"]] == ["offline_at"]
