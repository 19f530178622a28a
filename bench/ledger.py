"""The tamper-evident log at 10 000 and at 10 000 000 entries: proofs and the sequencer.

    .venv/bin/python bench/ledger.py [--sizes 10000,10000000] [--proofs 300] [--queue 30000]

Uses the PostgreSQL in DATABASE_URL (the URL of a maintenance database: fresh databases
are made there and dropped at the end) or starts the embedded one in a temporary folder.
For each size it makes a database of its own and writes a log of that many entries the
way the sequencer stores them (leaf texts shaped like real ones, every complete subtree's
hash, computed with service.domain.merkle and loaded with COPY). Then, the sizes taking
turns so that other load slows them alike:

- proofs through HTTP (`youdai`'s app in this process, an admin key): inclusion proofs of
  random entries at the full size, and consistency proofs between random sizes; median
  and p99 milliseconds (goal at 10 M: under 50 ms);
- the sequencer: `--queue` redemptions are written into the ledger at once, and rounds
  of service.flows.ledger.sequence run until none is left, each appending a batch (and
  folding it into the report rollups), rechecking a chunk of the stored log and signing
  a checkpoint when due; entries per second (goal at 10 M: at least 1 000 a second, the
  rate at which tills would fill the queue).

The ratios 10 M / 10 k say how the cost grows with the log: a proof reads O(log² n)
stored hashes, an append O(1) amortised.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder would come first on sys.path, where bench/token.py
# shadows the standard library's `token` module: put the repository root there instead.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ruff: noqa: E402  (the imports below must come after that)

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
from aiohttp import web

from bench._common import (
    WATERMARK_PAST_ALL,
    create_database,
    drop_database,
    free_port,
    postgres,
)
from service.app import create_app
from service.config import load_settings
from service.db.migrate import migrate
from service.db.pool import create_pool, init_connection
from service.domain import merkle
from service.domain.auth import Role
from service.domain.ledger import LedgerRecord, leaf_of
from service.flows import keys as keys_flow
from service.flows import ledger as ledger_flow
from service.flows.keyring import Keyring

CHUNK = 250_000
START = datetime(2025, 1, 1, tzinfo=UTC)


def synthetic_record(index: int) -> LedgerRecord:
    """Entry `index` of the seeded ledger: the redemption `_LEDGER` writes for it."""
    return LedgerRecord(
        id=f"rdm_{index:016d}",
        kind="redemption",
        redemption_id=None,
        voucher_id="vch_bench",
        offer_id="ofr_bench",
        partner_id="ptn_bench",
        holder_category="veteran",
        purchase_amount=1_000 + index % 50_000,
        discount_amount=index % 1_000,
        created_at=START + timedelta(seconds=index * 3),
    )


#: The same redemptions in SQL (the log of them is written directly).
_LEDGER = """
    INSERT INTO redemptions
        (id, voucher_id, offer_id, partner_id, holder_id, holder_category, scanner_key_id,
         purchase_amount, discount_amount, payable_amount, budget_cost, created_at, local_day)
    SELECT 'rdm_' || lpad(i::text, 16, '0'), 'vch_bench', 'ofr_bench', 'ptn_bench',
           'hld_bench', 'veteran', 'key_bench', 1000 + i % 50000, i % 1000,
           1000 + i % 50000 - i % 1000, i % 1000,
           '2025-01-01 00:00:00+00'::timestamptz + i * interval '3 seconds', '2025-01-01'
    FROM generate_series($1::bigint, $2::bigint) AS i
"""


async def write_log(conn: asyncpg.Connection, size: int) -> None:
    """`size` redemptions and the log of them, stored as the sequencer stores it."""
    started = time.perf_counter()
    frontier: dict[merkle.Node, bytes] = {}
    for first in range(0, size, CHUNK):
        last = min(first + CHUNK, size)
        await conn.execute(_LEDGER, first, last - 1)
        records = [synthetic_record(index) for index in range(first, last)]
        leaves = [leaf_of(first + offset, record) for offset, record in enumerate(records)]
        made = merkle.extend(first, [merkle.leaf_hash(leaf.encode()) for leaf in leaves], frontier)
        frontier = {**frontier, **dict(made)}
        frontier = {node: frontier[node] for node in merkle.nodes_of(0, last)}
        await conn.copy_records_to_table(
            "ledger_entries",
            records=[
                (index, record.id, leaf, record.created_at)
                for index, record, leaf in zip(range(first, last), records, leaves, strict=False)
            ],
            columns=["log_index", "entry_id", "leaf", "created_at"],
        )
        await conn.copy_records_to_table(
            "ledger_nodes",
            records=[(node.level, node.index, digest) for node, digest in made],
            columns=["level", "idx", "hash"],
        )
        if size > CHUNK:
            print(f"  {last:>12,} entries  {time.perf_counter() - started:6.0f} s", flush=True)
    # Logged above as the sequencer would have: it starts after them (the watermark).
    await conn.execute(WATERMARK_PAST_ALL)
    await conn.execute("VACUUM ANALYZE redemptions, ledger_entries, ledger_nodes")
    print(f"wrote a log of {size:,} entries in {time.perf_counter() - started:.0f} s")


_PROGRAMME = """
    INSERT INTO partners (id, name, category, status)
    VALUES ('ptn_bench', '基准伙伴', 'retail', 'active');
    INSERT INTO holders (id, card_number, category, display_name, region, valid_until, pin_hash)
    VALUES ('hld_bench', 'BENCH-0001', 'veteran', '基准', '', '2099-12-31', '$argon2id$bench');
    INSERT INTO offers (id, partner_id, title, kind, amount_off, status, uses_per_voucher)
    VALUES ('ofr_bench', 'ptn_bench', '基准', 'amount_off', 100, 'active', 1000000000);
    INSERT INTO vouchers (id, holder_id, offer_id, partner_id, status, uses_left, uses_total,
                          expires_at, issued_by)
    VALUES ('vch_bench', 'hld_bench', 'ofr_bench', 'ptn_bench', 'active', 1000000000,
            1000000000, '2099-12-31', 'bench');
    INSERT INTO api_keys (id, role, partner_id, label, key_hash)
    VALUES ('key_bench', 'scanner', 'ptn_bench', 'till', sha256('bench'));
"""

_QUEUE = """
    INSERT INTO redemptions
        (id, voucher_id, offer_id, partner_id, holder_id, holder_category, scanner_key_id,
         purchase_amount, discount_amount, payable_amount, budget_cost, local_day)
    SELECT 'rdm_q' || lpad(i::text, 12, '0'), 'vch_bench', 'ofr_bench', 'ptn_bench',
           'hld_bench', 'veteran', 'key_bench', 1000, 100, 900, 100, current_date
    FROM generate_series($1::bigint, $2::bigint) AS i
"""


async def prepared(maintenance_url: str, size: int) -> tuple[str, str]:
    """A database holding a log of `size` entries and a programme to redeem at; (its
    URL, an admin key)."""
    dsn = await create_database(maintenance_url)
    conn = await asyncpg.connect(dsn, command_timeout=None)
    try:
        await init_connection(conn)
        await migrate(conn)
        await conn.execute(_PROGRAMME)
        await write_log(conn, size)
        _, key = await keys_flow.issue(
            conn, role=Role.ADMIN, partner_id=None, label="bench", actor=None
        )
    finally:
        await conn.close()
    return dsn, key


async def time_proofs(
    session: aiohttp.ClientSession, url: str, size: int, count: int, rng: random.Random
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"inclusion": [], "consistency": []}
    for turn in range(count + 10):  # the first ten warm up
        index = rng.randrange(size)
        old = rng.randint(1, size)
        for kind, path in (
            ("inclusion", f"/v1/ledger/proofs/inclusion?index={index}&size={size}"),
            ("consistency", f"/v1/ledger/proofs/consistency?from={old}&to={size}"),
        ):
            started = time.perf_counter()
            async with session.get(url + path) as answer:
                body = await answer.json()
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status != 200:
                raise SystemExit(f"{path}: {answer.status} {body}")
            if turn >= 10:
                samples[kind].append(elapsed)
    return samples


async def time_sequencer(dsn: str, queue: int, size: int) -> float:
    """Entries appended per second while `queue` queued redemptions drain, rounds run
    back to back by this process alone (no server is running then)."""
    conn = await asyncpg.connect(dsn)
    try:
        first = await conn.fetchval("SELECT count(*) FROM redemptions")
        await conn.execute(_QUEUE, first, first + queue - 1)
    finally:
        await conn.close()
    settings = load_settings({"YOUDAI_LOG_LEVEL": "WARNING"})
    keyring = Keyring(settings.token_ttl, settings.sealer())
    pool = await create_pool(settings, dsn)
    try:
        started = time.perf_counter()
        sweep, appended = 0, 0
        while True:
            done = await ledger_flow.sequence(
                pool, keyring, settings, datetime.now(UTC) + timedelta(hours=1), sweep
            )
            if not done.consistent:
                raise SystemExit("the log stopped signing: it is not consistent")
            if not done.appended:
                break
            appended += done.appended
            sweep = done.next_sweep
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    if appended != queue or done.size != size + queue:
        raise SystemExit(f"appended {appended:,} of {queue:,}; the log holds {done.size:,}")
    return queue / elapsed


async def run(maintenance_url: str, sizes: list[int], proofs: int, queue: int) -> None:
    rng = random.Random(2026)
    print(f"{os.cpu_count()} cores")
    made: list[str] = []
    runners: list[web.AppRunner] = []
    results: dict[int, dict[str, float]] = {}
    try:
        apps = {}
        for size in sizes:
            dsn, key = await prepared(maintenance_url, size)
            made.append(dsn)
            settings = load_settings({"YOUDAI_LOG_LEVEL": "WARNING"})
            app = create_app(settings, dsn)
            runner = web.AppRunner(app)
            await runner.setup()
            runners.append(runner)
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            apps[size] = (app, dsn, key, f"http://127.0.0.1:{port}")
        for size, (_, _, key, url) in apps.items():
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
                samples = await time_proofs(session, url, size, proofs, rng)
            results[size] = {}
            for kind, values in samples.items():
                values.sort()
                median, p99 = statistics.median(values), values[int(len(values) * 0.99) - 1]
                results[size] |= {kind: median, kind + " p99": p99}
                print(
                    f"{size:>12,} entries  {kind:<11} proof  median {median:6.2f} ms  "
                    f"p99 {p99:6.2f} ms"
                )
        for runner in runners:  # their sequencers would share the queue
            await runner.cleanup()
        runners.clear()
        for size, (_, dsn, _, _) in apps.items():
            rate = await time_sequencer(dsn, queue, size)
            results[size]["sequencer"] = rate
            print(f"{size:>12,} entries  sequencer  {rate:,.0f} entries/s ({queue:,} queued)")
    finally:
        for runner in runners:
            await runner.cleanup()
        for dsn in made:
            await drop_database(maintenance_url, dsn)
    small, large = min(sizes), max(sizes)
    for kind in ("inclusion", "consistency"):
        worst = results[large][kind + " p99"]
        print(
            f"{kind} proof at {large:,}: p99 {worst:.2f} ms (goal < 50 ms: "
            f"{'met' if worst < 50 else 'MISSED'}); median {large:,} / {small:,}: "
            f"{results[large][kind] / results[small][kind]:.2f}x"
        )
    rate = results[large]["sequencer"]
    print(
        f"sequencer at {large:,}: {rate:,.0f} entries/s (goal >= 1 000: "
        f"{'met' if rate >= 1000 else 'MISSED'}); {large:,} / {small:,}: "
        f"{rate / results[small]['sequencer']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,10000000", help="entries, comma-separated")
    parser.add_argument("--proofs", type=int, default=300, help="proofs of each kind per size")
    parser.add_argument("--queue", type=int, default=30_000, help="redemptions to sequence")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with postgres(durable=False) as maintenance_url:
        asyncio.run(run(maintenance_url, sizes, args.proofs, args.queue))


if __name__ == "__main__":
    main()
