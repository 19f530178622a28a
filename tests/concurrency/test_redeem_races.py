"""Rule 1 and 2 under load: many scanners on two servers at the same voucher or offer."""

from collections import Counter
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.concurrency.conftest import assert_counters_match_ledger, burst, fresh_key
from tests.helpers import Till, record_redemption


def codes(results) -> Counter:
    return Counter(201 if status == 201 else body["code"] for status, body, _ in results)


async def test_200_redeems_of_one_single_use_voucher_grant_exactly_one(
    servers, db: asyncpg.Connection, settings
) -> None:
    till = await Till(db, settings).open()
    results = await burst(
        servers,
        [
            ({**till.scanner, **fresh_key()}, {"token": till.token, "purchase_amount": 5000})
            for _ in range(200)
        ],
    )
    assert codes(results) == {201: 1, "voucher_used_up": 199}
    assert all(status < 500 for status, _, _ in results)
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 1
    await assert_counters_match_ledger(db)


async def test_a_rescan_is_refused_without_waiting_for_the_vouchers_lock(
    servers, db: asyncpg.Connection, database_url: str, settings
) -> None:
    """A refusal is judged on an unlocked read: a burst of scans of a used code does not
    queue behind whichever transaction holds the voucher (here, one held open)."""
    import asyncio

    till = await Till(db, settings).open()
    first = await burst(
        servers, [({**till.scanner, **fresh_key()}, {"token": till.token, "purchase_amount": 500})]
    )
    assert first[0][0] == 201
    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM vouchers WHERE id = $1 FOR UPDATE", till.voucher_id)
            again = await asyncio.wait_for(
                burst(
                    servers,
                    [
                        (
                            {**till.scanner, **fresh_key()},
                            {"token": till.token, "purchase_amount": 500},
                        )
                        for _ in range(20)
                    ],
                ),
                timeout=5,
            )
    finally:
        await holder.close()
    assert codes(again) == {"voucher_used_up": 20}
    await assert_counters_match_ledger(db)


async def test_budget_of_10000_with_300_off_grants_exactly_33_of_40(
    servers, db: asyncpg.Connection, settings
) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 300, "budget": 10_000}
    )
    tokens = [till.token] + [(await till.new_voucher())[1] for _ in range(39)]
    results = await burst(
        servers,
        [({**till.scanner, **fresh_key()}, {"token": t, "purchase_amount": 1000}) for t in tokens],
    )
    assert codes(results) == {201: 33, "budget_exhausted": 7}
    assert await db.fetchval("SELECT spent FROM offers") == 9_900
    await assert_counters_match_ledger(db)


async def test_total_of_10_grants_exactly_10_of_40(servers, db, settings) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "percent_off", "percent_bp": 500, "total_redemptions": 10}
    )
    tokens = [till.token] + [(await till.new_voucher())[1] for _ in range(39)]
    results = await burst(
        servers,
        [({**till.scanner, **fresh_key()}, {"token": t, "purchase_amount": 999}) for t in tokens],
    )
    assert codes(results) == {201: 10, "offer_exhausted": 30}
    await assert_counters_match_ledger(db)


async def test_holder_limit_of_2_a_month_grants_exactly_2_of_30(servers, db, settings) -> None:
    till = await Till(db, settings).open(
        offer={
            "kind": "service",
            "nominal_value": 2000,
            "uses_per_voucher": 30,
            "holder_limit_count": 2,
            "holder_limit_period": "month",
        }
    )
    results = await burst(
        servers,
        [
            ({**till.scanner, **fresh_key()}, {"token": till.token, "purchase_amount": 100})
            for _ in range(30)
        ],
    )
    assert codes(results) == {201: 2, "holder_limit_reached": 28}
    assert await db.fetchval("SELECT uses_left FROM vouchers") == 28
    await assert_counters_match_ledger(db)


async def test_50_at_once_with_one_key_make_one_redemption(servers, db, settings) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 100, "uses_per_voucher": 50}
    )
    headers = {**till.scanner, "Idempotency-Key": "receipt-0001"}
    body = {"token": till.token, "purchase_amount": 1000}
    results = await burst(servers, [(headers, body)] * 50)
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 1
    redemption_id = await db.fetchval("SELECT id FROM redemptions")
    answered = [b for status, b, _ in results if status == 201]
    assert answered and all(b["id"] == redemption_id for b in answered)
    others = Counter(b["code"] for status, b, _ in results if status != 201)
    assert set(others) <= {"idempotency_key_in_use"}
    replays = [h for status, _, h in results if status == 201 and "Idempotent-Replayed" in h]
    assert len(replays) == len(answered) - 1
    again = await burst(servers, [(headers, body)])
    assert again[0][0] == 201 and again[0][1]["id"] == redemption_id
    await assert_counters_match_ledger(db)


async def test_concurrent_reversals_apply_once(servers, db, settings) -> None:
    import asyncio

    till = await Till(db, settings).open()
    first = await burst(
        servers, [({**till.scanner, **fresh_key()}, {"token": till.token, "purchase_amount": 5000})]
    )
    redemption_id = first[0][1]["id"]
    answers = await asyncio.gather(
        *(
            servers[i % 2].post(
                f"/v1/redemptions/{redemption_id}/reversal", json={}, headers=till.partner
            )
            for i in range(20)
        )
    )
    assert sorted(a.status for a in answers) == [201] + [409] * 19
    assert await db.fetchval("SELECT count(*) FROM reversals") == 1
    await assert_counters_match_ledger(db)


async def test_redeems_and_reversals_racing_on_one_offer_never_deadlock(
    servers, db, settings
) -> None:
    import asyncio

    till = await Till(db, settings).open(
        offer={
            "kind": "amount_off",
            "amount_off": 100,
            "uses_per_voucher": 100,
            "budget": 1_000_000,
            "holder_limit_count": 1000,
            "holder_limit_period": "day",
        }
    )
    tokens = [till.token] + [(await till.new_voucher())[1] for _ in range(5)]
    first = await burst(
        servers,
        [
            ({**till.scanner, **fresh_key()}, {"token": t, "purchase_amount": 1000})
            for t in tokens * 4
        ],
    )
    redeemed = [body["id"] for status, body, _ in first if status == 201]
    assert len(redeemed) == 24

    async def reverse(index: int, redemption_id: str):
        return await servers[index % 2].post(
            f"/v1/redemptions/{redemption_id}/reversal", json={}, headers=till.partner
        )

    mixed = [reverse(i, r) for i, r in enumerate(redeemed)] + [
        servers[i % 2].post(
            "/v1/redemptions",
            json={"token": tokens[i % len(tokens)], "purchase_amount": 1000},
            headers={**till.scanner, **fresh_key()},
        )
        for i in range(24)
    ]
    answers = await asyncio.gather(*mixed)
    assert sorted({a.status for a in answers}) == [201], [
        await a.text() for a in answers if a.status != 201
    ][:3]
    await assert_counters_match_ledger(db)


async def test_a_write_refused_in_steps_names_the_limit_another_request_reached(
    db: asyncpg.Connection, database_url: str, settings
) -> None:
    """The redeem's read allows the use, then another till spends the offer's budget
    before its write. The refusal is budget_exhausted, judged on the counters as the
    write found them; the holder's period count that the refused write had already moved
    (1 of 1) must not make it holder_limit_reached. Nothing of it is written."""
    import asyncio

    from service.db.pool import create_pool
    from service.domain.auth import Role, ScannerKey
    from service.domain.errors import ApiError
    from service.flows import keys as keys_flow
    from service.flows import redemptions as flow

    till = await Till(db, settings).open(
        offer={
            "kind": "amount_off",
            "amount_off": 300,
            "budget": 1_000,
            "holder_limit_count": 1,
            "holder_limit_period": "month",
        }
    )
    key, _ = await keys_flow.issue(
        db, role=Role.SCANNER, partner_id=till.partner_id, label="till 2", actor=None
    )
    other_voucher, _ = await till.new_voucher()
    scanner = ScannerKey(role=Role.SCANNER, key_id=key.id, partner_id=till.partner_id, label="")
    command = flow.RedeemCommand(
        scanner=scanner,
        scanned=flow.Scanned(till.voucher_id),
        purchase_amount=1_000,
        reference="",
        idempotency_key="receipt-7",
        fingerprint=b"one request",
    )
    other_till = await asyncpg.connect(database_url)
    pool = await create_pool(settings, database_url)
    try:
        async with other_till.transaction():
            await other_till.execute("SELECT 1 FROM offers WHERE id = $1 FOR UPDATE", till.offer_id)
            redeeming = asyncio.ensure_future(
                flow._redeem(pool, settings.timezone, command, datetime.now(UTC))
            )
            # The write now waits for the offer's row, its reads done.
            for _ in range(500):
                waiting = await db.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%WITH input AS%'"  # the redeem statement's opening
                )
                if waiting or redeeming.done():
                    break
                await asyncio.sleep(0.01)
            assert waiting == 1
            # The other till redeems another holder's voucher for 800 of the 1 000 left.
            await record_redemption(
                other_till, settings, other_voucher, at=datetime.now(UTC), discount_amount=800
            )
        with pytest.raises(ApiError) as refused:
            await redeeming
        assert refused.value.code == "budget_exhausted"
    finally:
        await pool.close()
        await other_till.close()
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 1  # the other till's
    assert await db.fetchval("SELECT count(*) FROM holder_offer_usage") == 0
    assert await db.fetchval("SELECT uses_left FROM vouchers WHERE id = $1", till.voucher_id) == 1
    stored = await db.fetchval("SELECT response_body->>'code' FROM idempotency_keys")
    assert stored == "budget_exhausted"
    await assert_counters_match_ledger(db)
