"""The public directory at 100 and at 10 000 partners (50 000 offers): latency through HTTP.

    .venv/bin/python bench/directory.py [--sizes 100,10000] [--rounds 60]

Uses the PostgreSQL in DATABASE_URL (the URL of a maintenance database: fresh databases
are made there and dropped at the end) or starts the embedded one in a temporary folder.
For each size it makes a database of its own and seeds that many partners (active, every
tenth not listed, seven categories, twelve regions) with five offers each (every kind,
one in five paused, one in ten ended, one in three only for some holder categories),
with bulk `INSERT … SELECT … FROM generate_series`. Then it times GET /v1/directory
through the service's app in this process, the sizes taking turns round by round:

- the first page (`limit=50`),
- a category and a region,
- a holder category,
- a search word (`q`), which reads names and titles;

and prints median and p95 milliseconds, and the ratio 10 000 / 100 (goal at 10 000:
under 50 ms for each).
"""

from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ruff: noqa: E402  (the imports below must come after that)

import argparse
import asyncio
import statistics
import time
from urllib.parse import quote

import aiohttp
import asyncpg
from aiohttp import web

from bench._common import create_database, drop_database, free_port, postgres
from service.app import create_app
from service.config import load_settings
from service.db.migrate import migrate
from service.db.pool import init_connection

OFFERS_PER_PARTNER = 5
QUERIES = {
    "first page": "limit=50",
    "category and region": "category=catering&region=" + quote("东城街道"),
    "holder category": "holder_category=martyr_family",
    "search": "q=" + quote("饭庄"),
}

_SEED = """
INSERT INTO partners (id, name, category, region, address, public_phone, opening_hours,
                      listed, status)
SELECT 'ptn_' || lpad(i::text, 12, '0'),
       (ARRAY['老字号饭庄', '邮政网点', '红色文旅', '便民超市', '社区门诊', '公交站务',
              '维修铺'])[i % 7 + 1] || i,
       (ARRAY['catering', 'postal', 'culture_tourism', 'retail', 'health', 'transport',
              'other'])[i % 7 + 1],
       (ARRAY['东城街道', '西城街道', '南苑街道', '北苑街道', '和平街道', '胜利街道',
              '建设街道', '文化街道', '健康街道', '东关街道', '新华街道', '民主街道'])[i % 12 + 1],
       '建设路 ' || i || ' 号', '010-6400-' || lpad((i % 10000)::text, 4, '0'),
       '每日 9:00–21:00', i % 10 <> 0, 'active'
FROM generate_series(1, $1) AS i;

INSERT INTO offers (id, partner_id, title, kind, percent_bp, max_discount, amount_off,
                    fixed_price, nominal_value, min_purchase, ends_at, eligible_categories,
                    status)
SELECT 'ofr_' || lpad(i::text, 12, '0') || '_' || k,
       'ptn_' || lpad(i::text, 12, '0'),
       '优惠' || k,
       (ARRAY['percent_off', 'amount_off', 'fixed_price', 'service', 'percent_off'])[k],
       CASE WHEN k IN (1, 5) THEN 1000 END, CASE WHEN k = 1 THEN 5000 END,
       CASE WHEN k = 2 THEN 500 END, CASE WHEN k = 3 THEN 3000 END,
       CASE WHEN k = 4 THEN 1000 END, CASE WHEN k IN (1, 2) THEN 1000 END,
       CASE WHEN (i + k) % 10 = 0 THEN now() - interval '1 day' ELSE now() + interval '1 year' END,
       CASE WHEN (i + k) % 3 = 0 THEN ARRAY['veteran'] ELSE '{}' END,
       CASE WHEN (i + k) % 5 = 0 THEN 'paused' ELSE 'active' END
FROM generate_series(1, $1) AS i, generate_series(1, 5) AS k;
"""


async def prepared(maintenance_url: str, size: int) -> str:
    dsn = await create_database(maintenance_url)
    conn = await asyncpg.connect(dsn, command_timeout=None)
    try:
        await init_connection(conn)
        await migrate(conn)
        started = time.perf_counter()
        for statement in _SEED.split(";\n\n"):
            await conn.execute(statement, size)
        await conn.execute("VACUUM ANALYZE partners, offers")
        offers = await conn.fetchval("SELECT count(*) FROM offers")
        print(
            f"seeded {size:,} partners, {offers:,} offers in {time.perf_counter() - started:.1f} s"
        )
    finally:
        await conn.close()
    return dsn


async def run(maintenance_url: str, sizes: list[int], rounds: int) -> None:
    print(f"{os.cpu_count()} cores")
    made, runners, urls = [], [], {}
    try:
        for size in sizes:
            dsn = await prepared(maintenance_url, size)
            made.append(dsn)
            runner = web.AppRunner(create_app(load_settings({"YOUDAI_LOG_LEVEL": "WARNING"}), dsn))
            await runner.setup()
            runners.append(runner)
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            urls[size] = f"http://127.0.0.1:{port}/v1/directory"
        samples: dict[int, dict[str, list[float]]] = {s: {q: [] for q in QUERIES} for s in sizes}
        async with aiohttp.ClientSession() as session:
            for round_ in range(rounds + 5):  # the first five warm up
                for size, url in urls.items():
                    for label, query in QUERIES.items():
                        started = time.perf_counter()
                        async with session.get(f"{url}?{query}") as answer:
                            body = await answer.read()
                        elapsed = (time.perf_counter() - started) * 1000
                        if answer.status != 200:
                            raise SystemExit(f"{label}: {answer.status} {body[:200]!r}")
                        if round_ >= 5:
                            samples[size][label].append(elapsed)
    finally:
        for runner in runners:
            await runner.cleanup()
        for dsn in made:
            await drop_database(maintenance_url, dsn)
    small, large = min(sizes), max(sizes)
    for label in QUERIES:
        for size in sizes:
            values = sorted(samples[size][label])
            print(
                f"{size:>7,} partners  {label:<20} median {statistics.median(values):6.2f} ms  "
                f"p95 {values[int(len(values) * 0.95) - 1]:6.2f} ms"
            )
        worst = sorted(samples[large][label])[int(len(samples[large][label]) * 0.95) - 1]
        ratio = statistics.median(samples[large][label]) / statistics.median(samples[small][label])
        print(
            f"  {label}: {large:,} / {small:,} median {ratio:.2f}x; p95 at {large:,} "
            f"{worst:.1f} ms (goal < 50 ms: {'met' if worst < 50 else 'MISSED'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000", help="partners, comma-separated")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    with postgres(durable=False) as maintenance_url:
        asyncio.run(run(maintenance_url, [int(s) for s in args.sizes.split(",")], args.rounds))


if __name__ == "__main__":
    main()
