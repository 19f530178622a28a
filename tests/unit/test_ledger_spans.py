"""The signed statement's span of log indexes (db/ledger.index_span, migration 0025): the
quarter hours' spans that a trigger keeps as entries are appended, and the period's
ragged ends read from the entries, give exactly the first and last index of the entries
made in any period, also where the log's order is not the order they were made in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from service.db import ledger as ledger_db
from service.db.reconcile import mismatches
from service.domain.ledger import LedgerRecord

BASE = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)
MIGRATION = Path(ledger_db.__file__).with_name("migrations") / "0025_ledger_spans.sql"


def _record(index: int, created_at: datetime) -> LedgerRecord:
    return LedgerRecord(
        id=f"red_span{index:05d}",
        kind="redemption",
        redemption_id=None,
        voucher_id="vch_span",
        offer_id="ofr_span",
        partner_id="ptn_span",
        holder_category="veteran",
        purchase_amount=10_000,
        discount_amount=1_000,
        created_at=created_at,
    )


def _made(rng: random.Random, count: int) -> list[datetime]:
    """When each entry in log order was made: about one every 3.5 minutes over a day,
    each up to 40 minutes earlier than its place says (a transaction that began before
    others committed after them), some on a quarter hour to the microsecond and some a
    microsecond before one."""
    made = []
    for index in range(count):
        moment = BASE + timedelta(seconds=index * 216 - rng.randrange(0, 2_400))
        if index % 17 == 0:
            moment = moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0)
        elif index % 19 == 0:
            quarter = moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0)
            moment = quarter - timedelta(microseconds=1)
        else:
            moment = moment.replace(microsecond=rng.randrange(1_000_000))
        made.append(moment)
    return made


async def _append(db: asyncpg.Connection, made: list[datetime], rng: random.Random) -> None:
    """In batches of the sizes the sequencer appends, so that a quarter hour's span is
    widened by later batches too."""
    index = 0
    while index < len(made):
        size = rng.randint(1, 40)
        batch = [
            (at, _record(at, made[at]), f"leaf {at}")
            for at in range(index, min(index + size, len(made)))
        ]
        async with db.transaction():
            await ledger_db.append(db, entries=batch, nodes=[])
        index += size


def _periods(rng: random.Random) -> list[tuple[datetime, datetime]]:
    """Local days in a zone on whole hours and in one on 45 minutes, whole quarter hours,
    instants anywhere, periods inside one quarter hour, and periods with no entry."""
    periods = []
    for zone in ("Asia/Shanghai", "Asia/Kathmandu"):
        tz = ZoneInfo(zone)
        day = BASE.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        periods += [(day + timedelta(days=n), day + timedelta(days=n + 1)) for n in (-1, 0, 1)]
    for _ in range(150):
        start = BASE + timedelta(seconds=rng.randrange(-7_200, 93_600))
        if rng.random() < 0.3:
            start = start.replace(minute=start.minute // 15 * 15, second=0)
        start = start.replace(microsecond=rng.choice([0, rng.randrange(1_000_000)]))
        length = timedelta(seconds=rng.choice([1, 200, 900, 1_800, 7_200, 40_000, 90_000]))
        periods.append((start, start + length))
    periods.append((BASE - timedelta(days=3), BASE - timedelta(days=2)))
    return periods


async def test_the_span_of_any_period_is_exactly_that_of_the_entries_made_in_it(
    db: asyncpg.Connection,
) -> None:
    rng = random.Random(30)
    made = _made(rng, 400)
    await _append(db, made, rng)
    for start, end in _periods(rng):
        inside = [index for index, at in enumerate(made) if start <= at < end]
        expected = (min(inside), max(inside)) if inside else (None, None)
        assert await ledger_db.index_span(db, start, end) == expected, (start, end)


async def test_the_migration_finds_for_existing_entries_the_spans_that_appending_keeps(
    db: asyncpg.Connection,
) -> None:
    rng = random.Random(25)
    await _append(db, _made(rng, 300), rng)
    kept = await db.fetch("SELECT * FROM ledger_spans ORDER BY quarter")
    backfill = MIGRATION.read_text()
    await db.execute("DELETE FROM ledger_spans")
    await db.execute(backfill[backfill.rindex("INSERT INTO ledger_spans") :])
    assert await db.fetch("SELECT * FROM ledger_spans ORDER BY quarter") == kept
    assert len(kept) > 50


async def test_reconcile_finds_a_span_that_disagrees_with_the_entries(
    db: asyncpg.Connection,
) -> None:
    rng = random.Random(3)
    await _append(db, _made(rng, 100), rng)
    assert "ledger spans" not in await mismatches(db)
    await db.execute(
        "UPDATE ledger_spans SET first_index = first_index + 1 "
        "WHERE quarter = (SELECT max(quarter) FROM ledger_spans WHERE first_index < last_index)"
    )
    assert {name: len(rows) for name, rows in (await mismatches(db)).items()} == {"ledger spans": 1}


async def test_a_period_reads_only_its_ragged_ends_from_the_entries(
    db: asyncpg.Connection,
) -> None:
    """Over a long log, min and max over the entries would walk the primary key from
    both ends until an entry falls in the period: here, index scans of the entries fetch
    only the entries of the ragged ends (index scans forced, as on a large log)."""
    rng = random.Random(7)
    made = _made(rng, 400)
    await _append(db, made, rng)
    start = BASE + timedelta(hours=8, minutes=3, seconds=7)
    end = BASE + timedelta(hours=10, minutes=50)
    ends = [
        at
        for at in made
        if start <= at < start.replace(minute=15, second=0) or end.replace(minute=45) <= at < end
    ]
    async with db.transaction():
        await db.execute("SET LOCAL enable_seqscan = off")
        await ledger_db.index_span(db, start, end)
        read = await db.fetchval(
            "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'ledger_entries'"
        )
    assert read <= len(ends) + 2, (read, len(ends))
