"""Offline redemptions arriving at once (docs/rules.md): every one is recorded, the first
to take the voucher's lock is judged as an online one would be, the rest carry the rule
they broke, and every counter and total stays exactly what the ledger says."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg

from service.domain.auth import Role
from tests.concurrency.conftest import assert_counters_match_ledger, burst, fresh_key
from tests.helpers import Till, bearer, fold_all, make_key


def offline_at(seconds_ago: int = 30) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


async def first_logged(db: asyncpg.Connection, count: int) -> str:
    """The first entry of the log, once the sequencer has appended `count` (within 5 s)."""
    for _ in range(100):
        if await db.fetchval("SELECT count(*) FROM ledger_entries") >= count:
            return await db.fetchval("SELECT entry_id FROM ledger_entries WHERE log_index = 0")
        await asyncio.sleep(0.1)
    raise AssertionError("the log did not catch up")


async def test_one_voucher_sent_by_many_tills_at_once_is_recorded_every_time(
    servers, db: asyncpg.Connection, settings
) -> None:
    till = await Till(db, settings).open(offer={"kind": "amount_off", "amount_off": 300})
    await db.execute("UPDATE api_keys SET created_at = now() - interval '1 minute'")
    tills = [bearer(await make_key(db, Role.SCANNER, till.partner_id)) for _ in range(6)]
    made = offline_at(1)  # the token was minted just before: alive then
    requests = [
        (
            {**tills[n % len(tills)], **fresh_key()},
            {"token": till.token, "purchase_amount": 1000, "offline_at": made},
        )
        for n in range(60)
    ]
    results = await burst(servers, requests)
    assert all(status == 201 for status, _, _ in results), results[:3]
    conflicts = Counter(body["conflict"] for _, body, _ in results)
    assert conflicts == {None: 1, "voucher_used_up": 59}
    first = next(body for _, body, _ in results if body["conflict"] is None)
    # The one without a conflict is the first written (under the voucher's lock): the
    # first of them in the tamper-evident log, whose order is the order of the writes.
    assert await first_logged(db, 60) == first["id"]
    voucher = await db.fetchrow("SELECT uses_left, uses_over, status FROM vouchers")
    assert tuple(voucher) == (0, 59, "used_up")
    offer = await db.fetchrow("SELECT redeemed_count, spent, conflict_count FROM offers")
    assert tuple(offer) == (60, 18_000, 59)
    await fold_all(db)  # the rollups follow the ledger off the request path (0021)
    rollup = await db.fetchrow(
        "SELECT sum(redemptions), sum(discount_total), sum(offline), sum(conflicts) "
        "FROM discount_rollup"
    )
    assert tuple(rollup) == (60, 18_000, 60, 59)
    await assert_counters_match_ledger(db)


async def test_online_and_offline_at_once_on_one_budget_stay_exact(
    servers, db: asyncpg.Connection, settings
) -> None:
    """Online redemptions never pass the budget; offline ones are all recorded, those
    past it with budget_exhausted; what is not a conflict stays within the budget."""
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 300, "budget": 6_000}
    )
    tokens = [till.token] + [(await till.new_voucher())[1] for _ in range(39)]
    made = offline_at(1)
    requests = []
    for n, token in enumerate(tokens):
        body = {"token": token, "purchase_amount": 1000}
        if n % 2:
            body["offline_at"] = made
        requests.append(({**till.scanner, **fresh_key()}, body))
    results = await burst(servers, requests)
    online = Counter(
        201 if status == 201 else body["code"]
        for (_, request), (status, body, _) in zip(requests, results, strict=True)
        if "offline_at" not in request
    )
    offline = Counter(
        (status, body.get("conflict"))
        for (_, request), (status, body, _) in zip(requests, results, strict=True)
        if "offline_at" in request
    )
    assert set(online) <= {201, "budget_exhausted"}
    assert sum(offline.values()) == 20 and {status for status, _ in offline} == {201}
    kept = await db.fetchrow(
        "SELECT count(*) AS n, sum(budget_cost) AS cost FROM redemptions WHERE conflict IS NULL"
    )
    assert kept["n"] == 20 and kept["cost"] == 6_000  # exactly the budget, never past it
    conflicts = await db.fetchval("SELECT count(*) FROM redemptions WHERE conflict IS NOT NULL")
    assert conflicts == offline[(201, "budget_exhausted")]
    total = await db.fetchrow("SELECT redeemed_count, spent FROM offers")
    assert total["redeemed_count"] == 20 + conflicts
    assert total["spent"] == 300 * (20 + conflicts)
    await assert_counters_match_ledger(db)


async def test_one_offline_redemption_sent_many_times_at_once_is_recorded_once(
    servers, db: asyncpg.Connection, settings
) -> None:
    till = await Till(db, settings).open()
    body = {"token": till.token, "purchase_amount": 1000, "offline_at": offline_at(1)}
    headers = {**till.scanner, "Idempotency-Key": "till-3-queue-1"}
    results = await burst(servers, [(headers, body)] * 20)
    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {201, 409} and statuses[201] >= 1
    assert {body["code"] for status, body, _ in results if status == 409} <= {
        "idempotency_key_in_use"
    }
    assert len({body["id"] for status, body, _ in results if status == 201}) == 1
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 1
    await assert_counters_match_ledger(db)
