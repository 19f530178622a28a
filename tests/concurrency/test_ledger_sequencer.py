"""The log's sequencer across processes and crashes (docs/ledger.md): three servers on one
database append a long queue while they are killed with SIGKILL, one after another and
restarted; the log ends with every ledger row exactly once, indexes 0…n-1 with no gap,
stored hashes that are the RFC's tree of the stored leaves, and every row folded into the
report rollups exactly once."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from datetime import UTC, date, datetime

import asyncpg
import pytest

from service.db import ledger as ledger_db
from service.db.pool import init_connection
from service.db.reconcile import mismatches
from service.domain import merkle
from service.domain.reports import Period
from service.flows import reports as reports_flow
from tests.cli.test_serve import wait_ready
from tests.concurrency.test_crash import start_server
from tests.conftest import free_port
from tests.helpers import Till, fold_all, record_redemption

pytestmark = pytest.mark.slow

ROWS = 60_000


async def queue_a_long_ledger(db: asyncpg.Connection, till: Till) -> None:
    """ROWS redemptions written straight into the ledger, in one transaction (the sequencer
    finds them by its id, migration 0021)."""
    key_id = await db.fetchval(
        "SELECT id FROM api_keys WHERE partner_id = $1 AND role = 'scanner'", till.partner_id
    )
    await db.execute(
        """
        INSERT INTO redemptions
            (id, voucher_id, offer_id, partner_id, holder_id, holder_category, scanner_key_id,
             purchase_amount, discount_amount, payable_amount, budget_cost, local_day)
        SELECT 'rdm_bulk_' || lpad(i::text, 8, '0'), $1, $2, $3, $4, 'veteran', $5,
               1000 + i, i % 100, 1000 + i - i % 100, i % 100, current_date
        FROM generate_series(1, $6) AS i
        """,
        till.voucher_id,
        till.offer_id,
        till.partner_id,
        till.holder_id,
        key_id,
        ROWS,
    )


async def test_killed_sequencers_leave_no_gap_and_no_duplicate(
    database_url: str, db: asyncpg.Connection, settings
) -> None:
    till = await Till(db, settings).open()
    await queue_a_long_ledger(db, till)
    ports = [free_port() for _ in range(3)]
    servers = [start_server(database_url, port) for port in ports]
    sizes_at_kill = []
    try:
        for server, port in zip(servers, ports, strict=True):
            await asyncio.to_thread(wait_ready, port, server)
        deadline = time.monotonic() + 240
        logged = 0
        while await db.fetchval("SELECT count(*) FROM ledger_entries") < ROWS:
            assert time.monotonic() < deadline, "the ledger was not all logged"
            await asyncio.sleep(0.05)
            size = await db.fetchval("SELECT count(*) FROM ledger_entries")
            if len(sizes_at_kill) < 6 and size > logged:
                # The log moved since the last crash: crash again, most likely mid-round.
                await asyncio.sleep(random.uniform(0.0, 0.3))
                victim = len(sizes_at_kill) % len(servers)
                servers[victim].send_signal(signal.SIGKILL)  # no shutdown: a crash
                servers[victim].wait()
                logged = await db.fetchval("SELECT count(*) FROM ledger_entries")
                sizes_at_kill.append(logged)
                servers[victim] = start_server(database_url, ports[victim])
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    # Most kills fell while the log was half written (else the test proved little).
    assert sum(0 < size < ROWS for size in sizes_at_kill) >= 3, sizes_at_kill

    rows = await db.fetch("SELECT log_index, entry_id, leaf FROM ledger_entries ORDER BY log_index")
    assert [row["log_index"] for row in rows] == list(range(ROWS))
    assert {row["entry_id"] for row in rows} == {
        row["id"] for row in await db.fetch("SELECT id FROM redemptions")
    }
    hashes = [merkle.leaf_hash(row["leaf"].encode()) for row in rows]
    stored = {
        merkle.Node(row["level"], row["idx"]): row["hash"]
        for row in await db.fetch("SELECT level, idx, hash FROM ledger_nodes")
    }
    expected: dict[merkle.Node, bytes] = {}
    for index, digest in enumerate(hashes):
        expected.update(merkle.appended(index, digest, expected.__getitem__))
    assert stored == expected
    assert merkle.range_hash(0, ROWS, stored) == merkle.root_of(iter(hashes))[1]
    assert await db.fetchval("SELECT count(*) FROM ledger_halts") == 0
    # Folded with the batch that logged it, under the same watermark: once each.
    assert await db.fetchval("SELECT sum(redemptions) FROM discount_rollup") == ROWS
    assert await db.fetchval("SELECT sum(redemptions) FROM discount_rollup_monthly") == ROWS
    # (Rows written straight into the ledger move no voucher or offer counter.)
    found = await mismatches(db)
    assert "daily rollup" not in found and "monthly rollup" not in found, found


async def test_a_ledger_row_that_commits_late_is_logged_in_its_place_never_skipped(
    database_url: str, db: asyncpg.Connection, settings
) -> None:
    """Commit order is not the log's order (migration 0021): a redeem whose transaction
    started first but commits last must neither be skipped nor let the sequencer pass
    it. While it runs, the rows after it wait; the reports count every committed row
    all the while; once it commits, it is logged first, and folded once."""
    till = await Till(db, settings).open(offer={"uses_per_voucher": 5})
    early_voucher, _ = await till.new_voucher()
    now = datetime.now(UTC)
    late = await asyncpg.connect(database_url)
    try:
        await init_connection(late)
        running = late.transaction()
        await running.start()
        # A redeem's transaction as it starts: a ledger writer with its transaction id.
        await ledger_db.enter_as_ledger_writer(late)
        await late.fetchval("SELECT pg_current_xact_id()")
        first_committed = await record_redemption(db, settings, early_voucher, at=now)
        assert await fold_all(db) == 0  # its id is above the running writer's: it waits
        assert await _year_total(db) == 1  # but the reports count it already
        late_row = await record_redemption(late, settings, till.voucher_id, at=now)
        assert await fold_all(db) == 0
        await running.commit()
    finally:
        await late.close()
    assert await fold_all(db) == 2
    logged = await db.fetch("SELECT entry_id FROM ledger_entries ORDER BY log_index")
    assert [row["entry_id"] for row in logged] == [late_row, first_committed]
    assert await db.fetchval("SELECT sum(redemptions) FROM discount_rollup") == 2
    assert await _year_total(db) == 2
    found = await mismatches(db)
    assert "daily rollup" not in found and "monthly rollup" not in found, found


async def _year_total(db: asyncpg.Connection) -> int:
    """Redemptions this year by the discounts report (rollups + rows not folded)."""
    this_year = datetime.now(UTC).year
    period = Period(date(this_year - 1, 1, 1), date(this_year + 1, 12, 31))
    report = await reports_flow.discount_report(db, None, period, ())
    return int(report["totals"]["redemptions"])


async def test_a_report_finds_the_rows_not_folded_from_the_watermark_whatever_the_ledger_size(
    db: asyncpg.Connection, settings
) -> None:
    """The rows after the watermark are read along their index from it, never by a scan
    of the ledger: the watermark goes in as parameters, which the planner sees (a bound in
    a subquery, which it cannot see, counted as a third of the table, and over ten million
    redemptions the report scanned them all, a second of PostgreSQL's CPU at the tills'
    priority for every report; bench/isolation.py)."""
    till = await Till(db, settings).open()
    await queue_a_long_ledger(db, till)
    assert await fold_all(db) == ROWS
    await record_redemption(db, settings, till.voucher_id, at=datetime.now(UTC))
    await db.execute("ANALYZE redemptions")
    async with db.transaction(isolation="repeatable_read", readonly=True):
        # Pages read through an index made dear, as they weigh in a ledger of millions of
        # rows: a whole scan then looks cheaper for any bound the planner cannot see (the
        # earlier SQL scanned the table here, as it did over ten million rows).
        await db.execute("SET LOCAL random_page_cost = 1000")
        total = await _year_total(db)
        scans = await db.fetchrow(
            "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = $1",
            "redemptions",
        )
    assert total == ROWS + 1  # the one not folded counted with the folded ones
    assert scans["seq_scan"] == 0 and scans["idx_scan"] >= 1, dict(scans)
