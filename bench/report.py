"""The discount report at 10 000 and at 10 000 000 redemptions: latency through HTTP.

    .venv/bin/python bench/report.py [--sizes 10000,10000000] [--rounds 40]

Uses the PostgreSQL in DATABASE_URL (the URL of a maintenance database: fresh databases
are created there and dropped at the end) or starts the embedded one in a temporary
folder. For each size it makes a database of its own and seeds that many redemptions over
one calendar year (2025): 100 partners, 3 offers each, 1 000 holders of the five
categories, one in a hundred redemptions reversed up to 19 days later. The ledger is
written with bulk `INSERT … SELECT … FROM generate_series`; the daily rollup is built from
the ledger rows and the monthly one from the daily, one statement each, and both are
then checked against the ledger with `youdai reconcile`'s queries. Then it times
GET /v1/reports/discounts with an admin key, the sizes taking turns round by round so
that other load on the machine slows them alike:

- year by month by partner: `group_by=partner,month&from=2025-01-01&to=2025-12-31`
- year totals:              `from=2025-01-01&to=2025-12-31`

Goals (issue 8): the 10 M time at most 2x the 10 k time; year by month by partner
under 200 ms. While seeding, the ledger's secondary indexes and foreign keys are
dropped and then recreated from their saved definitions (and so checked again). Every
database made is dropped at the end.
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
import statistics
import time

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
from service.db.pool import init_connection
from service.db.reconcile import CHECKS
from service.domain.auth import Role
from service.flows import keys as keys_flow

PARTNERS = 100
OFFERS_PER_PARTNER = 3
OFFERS = PARTNERS * OFFERS_PER_PARTNER
HOLDERS = 1_000
VOUCHERS = OFFERS * HOLDERS  # one voucher per holder and offer
SECONDS_IN_2025 = 365 * 24 * 3600
BATCH = 1_000_000

QUERIES = {
    "year by month by partner": {
        "group_by": "partner,month",
        "from": "2025-01-01",
        "to": "2025-12-31",
    },
    "year totals": {"from": "2025-01-01", "to": "2025-12-31"},
}

_PARTNERS_AND_HOLDERS = f"""
INSERT INTO partners (id, name, category, status)
SELECT 'ptn_b' || p, '合作单位 ' || p,
       (ARRAY['postal', 'culture_tourism', 'catering', 'retail', 'health', 'transport',
              'other'])[p % 7 + 1], 'active'
FROM generate_series(0, {PARTNERS - 1}) p;

INSERT INTO api_keys (id, key_hash, role, partner_id, label)
SELECT 'key_b' || p, sha256(('bench scanner ' || p)::bytea), 'scanner', 'ptn_b' || p, 'till'
FROM generate_series(0, {PARTNERS - 1}) p;

INSERT INTO offers (id, partner_id, title, kind, percent_bp, uses_per_voucher, status)
SELECT 'ofr_b' || o, 'ptn_b' || (o / {OFFERS_PER_PARTNER}), '优惠 ' || o, 'percent_off', 1000,
       1000000, 'active'
FROM generate_series(0, {OFFERS - 1}) o;

INSERT INTO holders (id, card_number, category, display_name, valid_until, pin_hash)
SELECT 'hld_b' || h, 'B-' || lpad(h::text, 8, '0'),
       (ARRAY['veteran', 'disabled_veteran', 'martyr_family', 'military_family',
              'other'])[h % 5 + 1],
       '持证人 ' || h, date '2030-12-31', '$argon2id$v=19$m=65536,t=3,p=4$bench$bench'
FROM generate_series(0, {HOLDERS - 1}) h;

INSERT INTO vouchers (id, holder_id, offer_id, partner_id, uses_total, uses_left, expires_at,
                      issued_by)
SELECT 'vch_b' || v, 'hld_b' || (v / {OFFERS}), 'ofr_b' || (v % {OFFERS}),
       'ptn_b' || ((v % {OFFERS}) / {OFFERS_PER_PARTNER}), 1000000, 1000000,
       timestamptz '2030-01-01 00:00+08', 'bench'
FROM generate_series(0, {VOUCHERS - 1}) v;
"""

# Redemption g: a voucher and an instant in 2025 (Shanghai time) drawn from two hashes of g;
# a purchase of ¥10.00 to ¥509.99 with 10 % off. Category and partner follow the voucher.
_REDEMPTIONS = f"""
INSERT INTO redemptions
    (id, voucher_id, offer_id, partner_id, holder_id, holder_category, scanner_key_id,
     purchase_amount, discount_amount, payable_amount, budget_cost, reference, created_at,
     local_day)
SELECT 'rdm_b' || lpad(g::text, 9, '0'), 'vch_b' || v, 'ofr_b' || o, 'ptn_b' || p,
       'hld_b' || h,
       (ARRAY['veteran', 'disabled_veteran', 'martyr_family', 'military_family',
              'other'])[h % 5 + 1],
       'key_b' || p, amount, amount / 10, amount - amount / 10, amount / 10, '', at,
       (at AT TIME ZONE 'Asia/Shanghai')::date
FROM (
    SELECT g, v, v % {OFFERS} AS o, (v % {OFFERS}) / {OFFERS_PER_PARTNER} AS p,
           v / {OFFERS} AS h, 1000 + (g * 37) % 50000 AS amount,
           timestamptz '2025-01-01 00:00:00+08'
               + ((hashint8(-g) & 2147483647) % {SECONDS_IN_2025}) * interval '1 second' AS at
    FROM (
        SELECT g, (hashint8(g) & 2147483647) % {VOUCHERS} AS v
        FROM generate_series($1::bigint, $2) g
    ) s
) r
"""

_REVERSALS = """
INSERT INTO reversals
    (id, redemption_id, offer_id, partner_id, holder_category, purchase_amount,
     discount_amount, reason, actor_id, actor_role, actor, created_at, local_day)
SELECT 'rev_' || substr(r.id, 5), r.id, r.offer_id, r.partner_id, r.holder_category,
       r.purchase_amount, r.discount_amount, 'refund', 'bench', 'admin',
       '{"type": "system"}'::jsonb, at,
       (at AT TIME ZONE 'Asia/Shanghai')::date
FROM (
    SELECT *, created_at + (substr(id, 6)::bigint % 20) * interval '1 day' AS at
    FROM redemptions WHERE substr(id, 6)::bigint % 100 = 0
) r
"""

_ROLLUP = """
INSERT INTO discount_rollup
    (partner_id, offer_id, holder_category, day, redemptions, reversals, purchase_total,
     discount_total)
SELECT partner_id, offer_id, holder_category, day, sum(redemptions), sum(reversals),
       sum(purchase), sum(discount)
FROM (
    SELECT partner_id, offer_id, holder_category, local_day AS day, 1 AS redemptions,
           0 AS reversals, purchase_amount AS purchase, discount_amount AS discount
    FROM redemptions
    UNION ALL
    SELECT partner_id, offer_id, holder_category, local_day, 0, 1, -purchase_amount,
           -discount_amount
    FROM reversals
) ledger
GROUP BY 1, 2, 3, 4
"""


_MONTHLY_ROLLUP = """
INSERT INTO discount_rollup_monthly
    (month, partner_id, offer_id, holder_category, redemptions, reversals, purchase_total,
     discount_total)
SELECT date_trunc('month', day)::date, partner_id, offer_id, holder_category,
       sum(redemptions), sum(reversals), sum(purchase_total), sum(discount_total)
FROM discount_rollup
GROUP BY 1, 2, 3, 4
"""


async def _saved_definitions(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    """The ledger's secondary indexes and foreign keys, as statements that recreate them."""
    indexes = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        WHERE i.indrelid IN ('redemptions'::regclass, 'reversals'::regclass)
          AND NOT i.indisprimary AND NOT i.indisunique
        """
    )
    keys = await conn.fetch(
        """
        SELECT conrelid::regclass::text AS tab, conname, pg_get_constraintdef(oid) AS definition
        FROM pg_constraint
        WHERE contype = 'f' AND conrelid IN ('redemptions'::regclass, 'reversals'::regclass)
        """
    )
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    for key in keys:
        await conn.execute(f'ALTER TABLE {key["tab"]} DROP CONSTRAINT "{key["conname"]}"')
    return (
        [index["definition"] for index in indexes],
        [
            f'ALTER TABLE {key["tab"]} ADD CONSTRAINT "{key["conname"]}" {key["definition"]}'
            for key in keys
        ],
    )


async def seed(conn: asyncpg.Connection, redemptions: int) -> None:
    started = time.perf_counter()
    indexes, keys = await _saved_definitions(conn)
    try:
        for first in range(1, redemptions + 1, BATCH):
            last = min(first + BATCH - 1, redemptions)
            await conn.execute(_REDEMPTIONS, first, last)
            if redemptions > BATCH:
                print(f"  {last:>10,} redemptions  {time.perf_counter() - started:6.0f} s")
        await conn.execute(_REVERSALS)
    finally:
        for statement in [*indexes, *keys]:  # restored (and the keys checked) whatever happens
            await conn.execute(statement)
    print(f"  ledger written, indexes and keys restored  {time.perf_counter() - started:6.0f} s")
    # The bulk build writes each daily row once and each month once, in two statements; its
    # result is checked against the ledger below like any other rollup.
    await conn.execute(_ROLLUP)
    await conn.execute(_MONTHLY_ROLLUP)
    # Counted in the rollups just built: the sequencer neither folds them again nor logs
    # them (the reports read the rollups; bench/ledger measures the log at this size).
    await conn.execute(WATERMARK_PAST_ALL)
    await conn.execute("VACUUM ANALYZE")
    reversed_ = await conn.fetchval("SELECT count(*) FROM reversals")
    days = await conn.fetchval("SELECT count(*) FROM discount_rollup")
    months = await conn.fetchval("SELECT count(*) FROM discount_rollup_monthly")
    print(
        f"seeded {redemptions:,} redemptions ({reversed_:,} reversed): {days:,} daily and "
        f"{months:,} monthly rollup rows in {time.perf_counter() - started:.0f} s"
    )
    for name in ("daily rollup", "monthly rollup"):
        wrong = await conn.fetch(CHECKS[name])
        if wrong:
            raise SystemExit(f"{name} disagrees with the ledger: {wrong[:3]}")
    print("reconcile: daily and monthly rollups equal the ledger")


async def timed(
    sessions: dict[int, tuple[aiohttp.ClientSession, str]], rounds: int
) -> dict[int, dict[str, float]]:
    """Median milliseconds per size and query. The sizes take turns round by round, so a
    busy machine slows them alike and the ratio stays fair."""
    samples: dict[int, dict[str, list[float]]] = {
        size: {label: [] for label in QUERIES} for size in sessions
    }
    answers = {}
    for round_ in range(rounds + 5):  # the first five warm up
        for size, (session, url) in sessions.items():
            for label, params in QUERIES.items():
                started = time.perf_counter()
                async with session.get(url, params=params) as response:
                    body = await response.json()
                elapsed = (time.perf_counter() - started) * 1000
                if response.status != 200:
                    raise SystemExit(f"{label}: {response.status} {body}")
                if round_ >= 5:
                    samples[size][label].append(elapsed)
                answers[size, label] = body
    medians: dict[int, dict[str, float]] = {}
    for size, by_label in samples.items():
        medians[size] = {}
        print(f"{size:,} redemptions:")
        for label, values in by_label.items():
            medians[size][label] = statistics.median(values)
            body = answers[size, label]
            print(
                f"  {label:<26} median {medians[size][label]:7.2f} ms  p95 "
                f"{sorted(values)[int(len(values) * 0.95) - 1]:7.2f} ms  ({len(body['rows'])} "
                f"rows, discount {body['totals']['discount_total']:,} fen)"
            )
    return medians


async def prepared_database(dsn: str, size: int) -> str:
    """Seed the new database of `dsn` with `size` redemptions; an admin key."""
    conn = await asyncpg.connect(dsn, command_timeout=None)
    try:
        await init_connection(conn)
        await migrate(conn)
        await conn.execute(_PARTNERS_AND_HOLDERS)
        _, key = await keys_flow.issue(
            conn, role=Role.ADMIN, partner_id=None, label="bench", actor=None
        )
        await seed(conn, size)
    finally:
        await conn.close()
    return key


async def run(maintenance_url: str, sizes: list[int], rounds: int) -> None:
    print(f"{os.cpu_count()} cores; {PARTNERS} partners, {OFFERS} offers, {HOLDERS} holders")
    databases: list[str] = []
    runners: list[web.AppRunner] = []
    sessions: dict[int, tuple[aiohttp.ClientSession, str]] = {}
    try:
        for size in sizes:
            dsn = await create_database(maintenance_url)
            databases.append(dsn)
            key = await prepared_database(dsn, size)
            runner = web.AppRunner(create_app(load_settings({"YOUDAI_LOG_LEVEL": "WARNING"}), dsn))
            await runner.setup()
            runners.append(runner)
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"})
            sessions[size] = (session, f"http://127.0.0.1:{port}/v1/reports/discounts")
        results = await timed(sessions, rounds)
    finally:
        for session, _ in sessions.values():
            await session.close()
        for runner in runners:
            await runner.cleanup()
        for dsn in databases:
            await drop_database(maintenance_url, dsn)
    small, large = min(sizes), max(sizes)
    if small != large:
        for label in QUERIES:
            ratio = results[large][label] / results[small][label]
            print(
                f"{label:<26} {large:,} / {small:,}: {ratio:.2f}x  "
                f"(goal <= 2x: {'met' if ratio <= 2 else 'MISSED'})"
            )
    worst = max(results[size]["year by month by partner"] for size in sizes)
    print(f"year by month by partner under 200 ms: {'met' if worst < 200 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,10000000", help="redemptions, comma-separated")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    # A temporary server's data is thrown away: seeding need not wait for the disk.
    with postgres(durable=False) as maintenance_url:
        asyncio.run(run(maintenance_url, sizes, args.rounds))


if __name__ == "__main__":
    main()
