"""CSV import of card holders: 10 000 rows through POST /v1/holders/import, then the
same file again, on a fresh database.

    .venv/bin/python bench/import.py [--rows 10000]

Uses the PostgreSQL in DATABASE_URL (the URL of a maintenance database: a fresh
database is created there and dropped at the end) or starts the embedded one in a
temporary folder, like tests/conftest.py. The app runs in this process on a local
port and is called over HTTP with an admin key.

Every row costs one argon2id operation whatever happens (a hash for a new card, a
verify for a known one), so the baseline is that work alone: the same number of
hashes on every core, with nothing else. The ratio import/baseline shows what
parsing, SQL and HTTP add on top.
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
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from aiohttp import web

from service.app import create_app
from service.config import load_settings
from service.db import keys as keys_db
from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate
from service.db.pool import init_connection
from service.domain import pins
from service.domain.auth import Role
from service.domain.categories import HOLDER_CATEGORIES

REGIONS = ("东城街道", "西城街道", "南城街道", "北城街道", "新区", "")


def holders_csv(rows: int, seed: int = 7) -> bytes:
    draw = random.Random(seed)
    lines = ["card_number,category,display_name,region,valid_until,pin"]
    for n in range(1, rows + 1):
        lines.append(
            f"YD-{n:08d},{HOLDER_CATEGORIES[n % len(HOLDER_CATEGORIES)]},持证人{n:05d},"
            f"{REGIONS[n % len(REGIONS)]},20{draw.randint(27, 35)}-12-31,"
            f"{draw.randint(0, 999_999):06d}"
        )
    return ("\r\n".join(lines) + "\r\n").encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def timed_import(session: aiohttp.ClientSession, url: str, data: bytes) -> tuple[float, dict]:
    started = time.perf_counter()
    async with session.post(url, data=data, headers={"Content-Type": "text/csv"}) as response:
        body = await response.json()
        if response.status != 200:
            raise SystemExit(f"import answered {response.status}: {body}")
    return time.perf_counter() - started, body


async def baseline(rows: int) -> float:
    """Seconds for `rows` argon2id hashes on every core, nothing else."""
    sample = min(rows, 400)
    started = time.perf_counter()
    await pins.hash_pins([f"{n:06d}" for n in range(sample)])
    return (time.perf_counter() - started) * rows / sample


async def run(maintenance_url: str, rows: int) -> None:
    name = f"youdai_bench_{uuid.uuid4().hex[:10]}"
    admin_conn = await asyncpg.connect(maintenance_url)
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(maintenance_url)._replace(path="/" + name))
    try:
        conn = await asyncpg.connect(dsn)
        await init_connection(conn)
        await migrate(conn)
        _, key = await keys_db.create_key(
            conn, role=Role.ADMIN, partner_id=None, label="bench", actor=None
        )
        runner = web.AppRunner(create_app(load_settings({"YOUDAI_LOG_LEVEL": "WARNING"}), dsn))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        data = holders_csv(rows)
        print(f"{rows} rows, {len(data) / 1024:.0f} KiB, {os.cpu_count()} cores")
        floor = await baseline(rows)
        print(f"baseline     {floor:7.1f} s  {rows / floor:7.0f} rows/s  (argon2id alone)")
        url = f"http://127.0.0.1:{port}/v1/holders/import"
        timeout = aiohttp.ClientTimeout(total=3600)
        headers = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            for label in ("first import", "re-import"):
                seconds, counts = await timed_import(session, url, data)
                print(
                    f"{label:<12} {seconds:7.1f} s  {rows / seconds:7.0f} rows/s  "
                    f"{seconds / floor:.2f}x baseline  {counts}"
                )
            started = time.perf_counter()
            async with session.get(
                f"http://127.0.0.1:{port}/v1/holders", params={"q": "持证人09999"}
            ) as response:
                found = len((await response.json())["items"])
            print(
                f"search q=持证人09999 over {await conn.fetchval('SELECT count(*) FROM holders')}"
                f" holders: {(time.perf_counter() - started) * 1000:.1f} ms ({found} found)"
            )
        await conn.close()
        await runner.cleanup()
    finally:
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    given = os.environ.get("DATABASE_URL")
    if given:
        asyncio.run(run(given, args.rows))
        return
    data_dir = Path(tempfile.mkdtemp(prefix="youdai-bench-pg-"))
    embedded = EmbeddedPostgres(data_dir)
    try:
        asyncio.run(run(embedded.start(), args.rows))
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
