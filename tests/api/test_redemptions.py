"""Preview, redeem and reverse through HTTP: rules in order, idempotency, the ledger."""

import json
import uuid
from datetime import datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.domain.auth import Role
from tests.helpers import Till, bearer, fold_all, make_key


@pytest.fixture
async def till(db, settings) -> Till:
    return await Till(db, settings).open(offer={"kind": "percent_off", "percent_bp": 1500})


async def redeem(client, till, token=None, amount=12800, key=None, scanner=None, **extra):
    return await client.post(
        "/v1/redemptions",
        json={"token": token or till.token, "purchase_amount": amount, **extra},
        headers={**(scanner or till.scanner), "Idempotency-Key": key or uuid.uuid4().hex},
    )


async def problem_code(response, status: int) -> str:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    return (await response.json())["code"]


async def test_preview_shows_the_grant_and_writes_nothing(
    client: TestClient, till: Till, db: asyncpg.Connection
) -> None:
    response = await client.post(
        "/v1/redemptions/preview",
        json={"token": till.token, "purchase_amount": 12801},
        headers=till.scanner,
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body == {
        "offer": {"id": till.offer_id, "title": "邮政寄递九折", "kind": "percent_off"},
        "purchase_amount": 12801,
        "discount_amount": 1920,  # 15 % of 128.01 = 19.2015 -> 19.20
        "payable_amount": 10881,
        "currency": "CNY",
        "uses_left": 1,
        "last_redeemed_at": None,
    }
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 0
    assert await db.fetchval("SELECT redeemed_count FROM offers") == 0


async def test_redeem_records_the_discount_and_answers_without_holder_data(
    client: TestClient, till: Till, db: asyncpg.Connection
) -> None:
    response = await redeem(client, till, amount=10000, reference="receipt 42")
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["discount_amount"] == 1500 and body["payable_amount"] == 8500
    assert body["status"] == "completed" and body["currency"] == "CNY"
    assert body["uses_left"] == 0 and body["voucher_id"] == till.voucher_id
    holder = await db.fetchrow("SELECT * FROM holders WHERE id = $1", till.holder_id)
    text = json.dumps(body, ensure_ascii=False)
    for private in (till.holder_id, holder["card_number"], holder["display_name"]):
        assert private not in text
    stored = await db.fetchrow("SELECT * FROM redemptions")
    assert stored["discount_amount"] == 1500 and stored["reference"] == "receipt 42"
    offer = await db.fetchrow("SELECT redeemed_count, spent FROM offers")
    assert (offer["redeemed_count"], offer["spent"]) == (1, 1500)
    # The report rollups follow the ledger off the request path (migration 0021).
    await fold_all(db)
    rollup = await db.fetchrow("SELECT * FROM discount_rollup")
    assert (rollup["redemptions"], rollup["discount_total"], rollup["purchase_total"]) == (
        1,
        1500,
        10000,
    )


async def test_second_redeem_of_single_use_voucher_is_refused(client: TestClient, till) -> None:
    assert (await redeem(client, till)).status == 201
    assert await problem_code(await redeem(client, till), 409) == "voucher_used_up"


async def test_idempotent_replay_returns_the_first_answer(client: TestClient, till, db) -> None:
    first = await redeem(client, till, key="till-1-receipt-9")
    again = await redeem(client, till, key="till-1-receipt-9")
    assert first.status == again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await again.json() == await first.json()
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 1


async def test_same_key_with_another_body_is_refused(client: TestClient, till) -> None:
    await redeem(client, till, key="k1", amount=1000)
    code = await problem_code(await redeem(client, till, key="k1", amount=2000), 422)
    assert code == "idempotency_key_reused"


async def test_refusals_are_stored_and_replayed_too(client: TestClient, till) -> None:
    await redeem(client, till)
    refused = await redeem(client, till, key="late")
    replay = await redeem(client, till, key="late")
    assert await problem_code(replay, 409) == "voucher_used_up"
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await replay.json() == await refused.json()


async def test_a_replayed_refusal_speaks_the_language_of_the_retry(
    client: TestClient, till
) -> None:
    """docs/api.md: the replay is the first answer, said in the caller's language."""
    await redeem(client, till)
    refused = await redeem(client, till, key="late")
    zh = {**till.scanner, "Idempotency-Key": "late", "Accept-Language": "zh"}
    body = {"token": till.token, "purchase_amount": 12800}
    replay = await client.post("/v1/redemptions", json=body, headers=zh)
    assert replay.status == 409 and replay.headers["Idempotent-Replayed"] == "true"
    said, first = await replay.json(), await refused.json()
    assert said["code"] == first["code"] == "voucher_used_up" and said["status"] == 409
    assert said["title"] == "优待券已无剩余使用次数" and not said["detail"].isascii()
    assert "_zh" not in said and "_zh" not in first
    english = await redeem(client, till, key="late")
    assert await english.json() == first


async def test_keys_are_scoped_to_the_scanners_partner(
    client: TestClient, till, db, settings
) -> None:
    other = await Till(db, settings).open()
    assert (await redeem(client, till, key="shared")).status == 201
    response = await redeem(client, other, key="shared")
    assert response.status == 201 and "Idempotent-Replayed" not in response.headers


async def test_idempotency_key_is_required_and_bounded(client: TestClient, till) -> None:
    body = {"token": till.token, "purchase_amount": 100}
    missing = await client.post("/v1/redemptions", json=body, headers=till.scanner)
    assert await problem_code(missing, 422) == "validation_error"
    assert (await missing.json())["errors"][0]["field"] == "Idempotency-Key"
    long = await client.post(
        "/v1/redemptions", json=body, headers={**till.scanner, "Idempotency-Key": "k" * 256}
    )
    assert await problem_code(long, 422) == "validation_error"


async def test_token_for_another_partner_is_wrong_partner(client: TestClient, till, db, settings):
    other = await Till(db, settings).open()
    code = await problem_code(await redeem(client, till, token=other.token), 403)
    assert code == "wrong_partner"


async def test_forged_and_expired_tokens_are_refused(client: TestClient, till, db) -> None:
    tampered = till.token[:-4] + ("AAAA" if not till.token.endswith("AAAA") else "BBBB")
    assert await problem_code(await redeem(client, till, token=tampered), 422) == "token_invalid"
    assert await problem_code(await redeem(client, till, token="garbage"), 422) == "token_invalid"


async def test_a_scanner_types_the_code_and_enter(client: TestClient, till) -> None:
    assert (await redeem(client, till, token=till.token + "\r\n")).status == 201


@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        ("UPDATE partners SET status = 'suspended'", "partner_inactive"),
        ("UPDATE vouchers SET status = 'revoked'", "voucher_revoked"),
        ("UPDATE vouchers SET expires_at = now() - interval '1 second'", "voucher_expired"),
        ("UPDATE holders SET status = 'suspended'", "holder_inactive"),
        ("UPDATE holders SET valid_until = '2020-01-01'", "holder_inactive"),
        ("UPDATE offers SET eligible_categories = '{martyr_family}'", "holder_ineligible"),
        ("UPDATE offers SET status = 'paused'", "offer_inactive"),
        ("UPDATE offers SET min_purchase = 999999", "below_min_purchase"),
        ("UPDATE offers SET total_redemptions = 1, redeemed_count = 1", "offer_exhausted"),
        ("UPDATE offers SET budget = 100", "budget_exhausted"),
    ],
)
async def test_each_rule_refuses_with_its_code_in_preview_and_redeem(
    client: TestClient, till, db, arrange: str, code: str
) -> None:
    await db.execute(arrange)
    preview = await client.post(
        "/v1/redemptions/preview",
        json={"token": till.token, "purchase_amount": 12800},
        headers=till.scanner,
    )
    status = 422 if code == "below_min_purchase" else 409
    assert await problem_code(preview, status) == code
    assert await problem_code(await redeem(client, till), status) == code
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 0


async def test_first_rule_broken_wins(client: TestClient, till, db) -> None:
    # voucher used up AND holder suspended AND offer paused: the voucher comes first.
    await db.execute("UPDATE vouchers SET status = 'used_up', uses_left = 0")
    await db.execute("UPDATE holders SET status = 'suspended'")
    await db.execute("UPDATE offers SET status = 'paused'")
    assert await problem_code(await redeem(client, till), 409) == "voucher_used_up"


async def test_holder_limit_per_month_is_enforced(client: TestClient, db, settings) -> None:
    till = await Till(db, settings).open(
        offer={
            "kind": "amount_off",
            "amount_off": 100,
            "uses_per_voucher": 5,
            "holder_limit_count": 2,
            "holder_limit_period": "month",
        }
    )
    assert (await redeem(client, till)).status == 201
    assert (await redeem(client, till)).status == 201
    assert await problem_code(await redeem(client, till), 409) == "holder_limit_reached"
    assert await db.fetchval("SELECT uses_left FROM vouchers") == 3


async def test_a_use_that_would_pass_the_budget_is_refused_not_partly_granted(
    client: TestClient, db, settings
) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 300, "budget": 500, "uses_per_voucher": 3}
    )
    assert (await redeem(client, till, amount=1000)).status == 201
    assert await problem_code(await redeem(client, till, amount=1000), 409) == "budget_exhausted"
    assert await db.fetchval("SELECT spent FROM offers") == 300


async def test_reversal_gives_the_use_budget_and_period_count_back(
    client: TestClient, db, settings
) -> None:
    till = await Till(db, settings).open(
        offer={
            "kind": "amount_off",
            "amount_off": 300,
            "budget": 300,
            "holder_limit_count": 1,
            "holder_limit_period": "day",
        }
    )
    redemption = await (await redeem(client, till, amount=1000)).json()
    reversal = await client.post(
        f"/v1/redemptions/{redemption['id']}/reversal",
        json={"reason": "refund"},
        headers=till.scanner,
    )
    assert reversal.status == 201, await reversal.text()
    body = await reversal.json()
    assert body["redemption_id"] == redemption["id"] and body["discount_amount"] == 300
    voucher = await db.fetchrow("SELECT status, uses_left FROM vouchers")
    assert (voucher["status"], voucher["uses_left"]) == ("active", 1)
    offer = await db.fetchrow("SELECT redeemed_count, spent FROM offers")
    assert (offer["redeemed_count"], offer["spent"]) == (0, 0)
    assert await db.fetchval("SELECT uses FROM holder_offer_usage") == 0
    assert (await redeem(client, till, amount=1000)).status == 201  # all limits free again
    fetched = await (
        await client.get(f"/v1/redemptions/{redemption['id']}", headers=till.partner)
    ).json()
    assert fetched["status"] == "reversed"


async def test_a_reversal_is_audited_and_shown_with_its_reason_and_actor(
    client: TestClient, till: Till, db, admin
) -> None:
    redemption = await (await redeem(client, till, amount=10000)).json()
    assert redemption.get("reversal") is None
    reversal = await (
        await client.post(
            f"/v1/redemptions/{redemption['id']}/reversal",
            json={"reason": "顾客退货"},
            headers=till.scanner,
        )
    ).json()
    till_key = (await (await client.get("/v1/till", headers=till.scanner)).json())["key_id"]
    actor = {"type": "key", "id": till_key, "label": "test scanner"}

    shown = await (await client.get(f"/v1/redemptions/{redemption['id']}", headers=admin)).json()
    assert shown["reversal"] == {
        "id": reversal["id"],
        "created_at": reversal["created_at"],
        "reason": "顾客退货",
        "actor": actor,
    }
    listed = await (await client.get("/v1/redemptions?status=reversed", headers=admin)).json()
    assert listed["items"][0]["reversal"]["reason"] == "顾客退货"

    events = await (
        await client.get(
            f"/v1/audit-events?entity=redemption&entity_id={redemption['id']}", headers=admin
        )
    ).json()
    [event] = events["items"]
    assert event["action"] == "redemption.reverse"
    assert event["actor"] == actor
    assert event["changes"] == {
        "status": ["completed", "reversed"],
        "reversal_id": [None, reversal["id"]],
        "amount_given_back": [None, 1500],
        "reason": [None, "顾客退货"],
    }


async def test_second_reversal_is_already_reversed(client: TestClient, till) -> None:
    redemption = await (await redeem(client, till)).json()
    path = f"/v1/redemptions/{redemption['id']}/reversal"
    assert (await client.post(path, json={}, headers=till.partner)).status == 201
    second = await client.post(path, json={}, headers=till.partner)
    assert await problem_code(second, 409) == "already_reversed"


async def test_reversal_after_the_window_is_refused(client: TestClient, till, db) -> None:
    redemption = await (await redeem(client, till)).json()
    async with db.transaction():  # the ledger is append-only: age it behind the trigger's back
        await db.execute("SET LOCAL session_replication_role = replica")
        await db.execute("UPDATE redemptions SET created_at = now() - interval '31 days'")
    response = await client.post(
        f"/v1/redemptions/{redemption['id']}/reversal", json={}, headers=till.partner
    )
    assert await problem_code(response, 409) == "reversal_window_closed"


async def test_the_ledger_is_append_only(till, client, db) -> None:
    await redeem(client, till)
    with pytest.raises(asyncpg.RaiseError):
        await db.execute("UPDATE redemptions SET discount_amount = 0")
    with pytest.raises(asyncpg.RaiseError):
        await db.execute("DELETE FROM redemptions")


async def test_other_partners_cannot_see_or_reverse(client: TestClient, till, db, settings) -> None:
    redemption = await (await redeem(client, till)).json()
    other = await Till(db, settings).open()
    path = f"/v1/redemptions/{redemption['id']}"
    assert (await client.get(path, headers=other.partner)).status == 404
    assert (await client.post(path + "/reversal", json={}, headers=other.scanner)).status == 404
    listed = await (await client.get("/v1/redemptions", headers=other.partner)).json()
    assert listed["items"] == []
    sneaky = await client.get(
        f"/v1/redemptions?partner_id={till.partner_id}", headers=other.partner
    )
    assert (await sneaky.json())["items"] == []


async def test_the_list_is_newest_first_through_filters_and_pages(
    client: TestClient, admin, db, settings
) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 100, "uses_per_voucher": 10}
    )
    made = [(await (await redeem(client, till, amount=500)).json())["id"] for _ in range(3)]
    await client.post(f"/v1/redemptions/{made[0]}/reversal", json={}, headers=till.partner)
    ids = made[::-1]  # docs/api.md: things that happen are listed newest first

    async def listed(query: str) -> list[str]:
        page = await (await client.get(f"/v1/redemptions?{query}", headers=admin)).json()
        return [item["id"] for item in page["items"]]

    assert await listed("status=reversed") == made[:1]
    assert await listed("status=completed") == ids[:2]
    assert await listed(f"offer_id={till.offer_id}") == ids
    today = datetime.now(settings.timezone).date()
    assert await listed(f"from={today}&to={today}") == ids
    assert await listed(f"from={today + timedelta(days=1)}") == []
    seen, cursor = [], None
    while True:
        page = await (
            await client.get(
                "/v1/redemptions?limit=1" + (f"&cursor={cursor}" if cursor else ""), headers=admin
            )
        ).json()
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ids
    bad = await client.get("/v1/redemptions?from=2026-01-01T00:00:00", headers=admin)
    assert bad.status == 422


async def test_list_filters_by_till_and_names_the_till_of_each_redemption(
    client: TestClient, admin, db, settings
) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 100, "uses_per_voucher": 10}
    )
    second = bearer(await make_key(db, Role.SCANNER, till.partner_id))

    async def key_of(scanner: dict[str, str]) -> str:
        return (await (await client.get("/v1/till", headers=scanner)).json())["key_id"]

    first_key, second_key = await key_of(till.scanner), await key_of(second)
    at_first = [(await (await redeem(client, till)).json())["id"] for _ in range(2)]
    at_second = (await (await redeem(client, till, scanner=second)).json())["id"]

    async def listed(query: str, headers: dict[str, str]) -> list[tuple[str, str]]:
        response = await client.get(f"/v1/redemptions?{query}", headers=headers)
        assert response.status == 200, await response.text()
        return [(item["id"], item["key_id"]) for item in (await response.json())["items"]]

    assert await listed(f"key_id={first_key}", admin) == [
        (i, first_key) for i in reversed(at_first)
    ]
    assert await listed(f"key_id={second_key}", till.partner) == [(at_second, second_key)]
    assert await listed(f"key_id={second_key}&offer_id={till.offer_id}", admin) == [
        (at_second, second_key)
    ]
    one = await (await client.get(f"/v1/redemptions/{at_second}", headers=till.partner)).json()
    assert one["key_id"] == second_key

    # Another partner's till is not this partner's to read: an empty page, as for an
    # unknown key or another partner's partner_id, whoever asks.
    other = await Till(db, settings).open()
    assert await listed(f"key_id={first_key}", other.partner) == []
    assert await listed(f"key_id={first_key}&partner_id={other.partner_id}", admin) == []
    assert await listed("key_id=key_unknown", admin) == []
    too_long = await client.get("/v1/redemptions?key_id=" + "k" * 65, headers=admin)
    assert await problem_code(too_long, 422) == "validation_error"


async def test_only_scanners_redeem(client: TestClient, till, admin) -> None:
    for headers in (admin, till.partner):
        response = await redeem(client, till, scanner=headers)
        assert await problem_code(response, 403) == "forbidden"


async def test_revoking_a_holder_makes_their_vouchers_unusable_at_once(
    client: TestClient, till, admin, db
) -> None:
    response = await client.patch(
        f"/v1/holders/{till.holder_id}", json={"status": "revoked"}, headers=admin
    )
    assert response.status == 200
    assert await problem_code(await redeem(client, till), 409) == "voucher_revoked"
    assert await db.fetchval("SELECT status FROM vouchers") == "revoked"


async def test_idempotency_keys_are_forgotten_after_24_hours(client: TestClient, till, db) -> None:
    """A redemption's key is answered again from its own ledger row, a refusal's from
    idempotency_keys, for 24 hours; then the same key is a new request, and housekeeping
    forgets the refusal."""
    from service.db.redemptions import purge_idempotency_keys

    assert (await redeem(client, till, key="redeemed")).status == 201
    assert await problem_code(await redeem(client, till, key="refused"), 409) == "voucher_used_up"
    assert await db.fetchval("SELECT count(*) FROM idempotency_keys") == 1  # the refusal only
    replayed = await redeem(client, till, key="redeemed")
    assert replayed.status == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    # A day and an hour later (the ledger is append-only: its trigger is stepped past).
    async with db.transaction():
        await db.execute("SET LOCAL session_replication_role = replica")
        await db.execute("UPDATE redemptions SET created_at = created_at - interval '25 hours'")
        await db.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    again = await redeem(client, till, key="redeemed")
    assert await problem_code(again, 409) == "voucher_used_up"  # judged anew: used up
    assert "Idempotent-Replayed" not in again.headers
    assert await purge_idempotency_keys(db) == 1
    assert [r["key"] for r in await db.fetch("SELECT key FROM idempotency_keys")] == ["redeemed"]


async def test_a_redeem_writes_its_ledger_row_and_counters_and_nothing_else(
    client: TestClient, till, db
) -> None:
    """Issue 30: the key and its answer are the ledger row's; the log and the report
    rollups follow off the request path (the app's sequencer is held off here)."""
    from service.db import ledger as ledger_db

    await ledger_db.lock_sequencer(db)
    try:
        first = await redeem(client, till, key="receipt-1")
        assert first.status == 201
        row = await db.fetchrow("SELECT * FROM redemptions")
        assert row["idempotency_key"] == "receipt-1" and row["uses_left"] == 0
        assert row["xact_id"] is not None
        for table in ("idempotency_keys", "discount_rollup", "discount_rollup_monthly"):
            assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
        assert await db.fetchval("SELECT count(*) FROM ledger_queue") == 0
        again = await redeem(client, till, key="receipt-1")
        assert again.status == 201 and await again.json() == await first.json()
    finally:
        await ledger_db.unlock_sequencer(db)
    assert await fold_all(db) == 1
    assert await db.fetchval("SELECT redemptions FROM discount_rollup") == 1
