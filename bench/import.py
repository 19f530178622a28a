"""Holder import as a job: a CSV file through POST /v1/holders/import to `completed`,
then the same file again, against argon2id alone on every core, in one run.

    .venv/bin/python bench/import.py [--rows 100000] [--no-reimport]

Uses the PostgreSQL in DATABASE_URL (the URL of a maintenance database: a fresh
database is created there and dropped at the end) or starts the embedded one in a
temporary folder, like tests/conftest.py. `youdai serve` runs in a subprocess on a
local port and is called over HTTP with an admin key; its RSS (and that of its
hashing processes) is sampled while the job runs.

Every row costs one argon2id operation whatever happens (a hash for a new card, a
verify for a known one), so the baseline is that work alone: the same pool of
hashing processes (one per usable core, same priority) hashing a sample of PINs with
nothing else running. Goals (issue 19, at 100 000 rows): import throughput ≥ 0.9×
the baseline's, and everything but hashing (import time minus the baseline's time
for as many operations) ≤ 10 s.
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
import contextlib
import json
import random
import subprocess
import threading
import time

import aiohttp
import asyncpg

from bench._common import (
    descendants,
    free_port,
    fresh_database,
    memory_mib,
    postgres,
    service_env,
    stop,
    wait_ready,
)
from service.db.migrate import migrate
from service.db.pool import init_connection
from service.domain.auth import Role
from service.domain.categories import HOLDER_CATEGORIES
from service.flows import keys as keys_flow
from service.flows.holder_imports import BATCH_ROWS
from service.pin_hashing import PinHashPool

REGIONS = ("东城街道", "西城街道", "南城街道", "北城街道", "新区", "")
GOAL_RATIO = 0.9
GOAL_OVERHEAD_S = 10.0


def holders_csv(rows: int, seed: int = 7) -> bytes:
    draw = random.Random(seed)
    lines = ["card_number,category,display_name,region,valid_until,pin"]
    for n in range(1, rows + 1):
        lines.append(
            f"YD-{n:08d},{HOLDER_CATEGORIES[n % len(HOLDER_CATEGORIES)]},持证人{n:06d},"
            f"{REGIONS[n % len(REGIONS)]},20{draw.randint(27, 35)}-12-31,"
            f"{draw.randint(0, 999_999):06d}"
        )
    return ("\r\n".join(lines) + "\r\n").encode()


async def baseline(rows: int) -> float:
    """Seconds for `rows` argon2id hashes on the import's pool, nothing else (measured
    on a sample of up to 2 000)."""
    sample = min(rows, 2000)
    pins = [f"{n:06d}" for n in range(sample)]
    async with PinHashPool() as pool:
        await pool.hashes([("000000", None)] * pool.workers)  # start the processes
        started = time.perf_counter()
        await asyncio.gather(
            *(
                pool.hashes([(pin, None) for pin in pins[i : i + BATCH_ROWS]])
                for i in range(0, sample, BATCH_ROWS)
            )
        )
        workers = pool.workers
    seconds = (time.perf_counter() - started) * rows / sample
    print(
        f"baseline     {seconds:7.1f} s  {rows / seconds:7.0f} rows/s  (argon2id alone, "
        f"{workers} processes, sample {sample})"
    )
    return seconds


class Server:
    """`youdai serve` in a subprocess; its JSON log lines kept."""

    def __init__(self, dsn: str, port: int) -> None:
        env = service_env(DATABASE_URL=dsn, YOUDAI_LOG_FORMAT="json", YOUDAI_LOG_LEVEL="INFO")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.logs: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with contextlib.suppress(ValueError):
                self.logs.append(json.loads(line))

    def logged(self, message: str, count: int) -> dict:
        """The `count`-th log record with this message (waiting a little for it)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = [r for r in list(self.logs) if r.get("message") == message]
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.05)
        return {}


async def timed_job(
    http: aiohttp.ClientSession, base: str, data: bytes, server: Server
) -> tuple[float, float, dict, float, float]:
    """(seconds to 202, seconds to completed, the job, peak server RSS, peak pool RSS)."""
    started = time.perf_counter()
    async with http.post(
        f"{base}/v1/holders/import", data=data, headers={"Content-Type": "text/csv"}
    ) as response:
        job = await response.json()
        if response.status != 202:
            raise SystemExit(f"import answered {response.status}: {job}")
    accepted = time.perf_counter() - started
    pid = server.process.pid
    peak_server = peak_pool = 0.0
    while job["status"] == "running":
        await asyncio.sleep(0.5)
        peak_server = max(peak_server, memory_mib(pid))
        peak_pool = max(peak_pool, sum(memory_mib(child) for child in descendants(pid)))
        async with http.get(f"{base}/v1/holder-imports/{job['id']}") as response:
            job = await response.json()
    if job["status"] != "completed":
        raise SystemExit(f"import failed: {job}")
    return accepted, time.perf_counter() - started, job, peak_server, peak_pool


async def run(dsn: str, rows: int, reimport: bool) -> None:
    server = None
    try:
        conn = await asyncpg.connect(dsn)
        await init_connection(conn)
        await migrate(conn)
        _, key = await keys_flow.issue(
            conn, role=Role.ADMIN, partner_id=None, label="bench", actor=None
        )
        data = holders_csv(rows)
        print(f"{rows} rows, {len(data) / 1024:.0f} KiB, {os.cpu_count()} cores")
        # Measured before and after the imports, as the machine's speed drifts: the mean is
        # the floor each import is compared with.
        floor_before = await baseline(rows)
        port = free_port()
        server = Server(dsn, port)
        base = f"http://127.0.0.1:{port}"
        timeout = aiohttp.ClientTimeout(total=7200)
        headers = {"Authorization": f"Bearer {key}"}
        wait_ready(f"{base}/readyz", server.process)
        timings = []
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
            idle = memory_mib(server.process.pid)
            print(f"server RSS idle {idle:.0f} MiB")
            labels = ("first import", "re-import") if reimport else ("first import",)
            for _ in labels:
                timings.append(await timed_job(http, base, data, server))
        stop(server.process)
        server_logs, server = server, None
        floor_after = await baseline(rows)  # the server's pool is gone: nothing else runs
        floor = (floor_before + floor_after) / 2
        print(f"baseline mean {floor:7.1f} s  {rows / floor:7.0f} rows/s")
        for count, (label, timing) in enumerate(zip(labels, timings, strict=True), start=1):
            accepted, seconds, job, peak, pool = timing
            done = server_logs.logged("holder import completed", count)
            ratio = floor / seconds
            overhead = seconds - floor
            print(
                f"{label:<12} {seconds:7.1f} s  {rows / seconds:7.0f} rows/s  "
                f"{ratio:.2f}x baseline throughput (goal >= {GOAL_RATIO})  "
                f"created {job['created']} updated {job['updated']}"
            )
            print(
                f"             everything but hashing {overhead:5.1f} s "
                f"(goal <= {GOAL_OVERHEAD_S:.0f} s at 100 000 rows): check + 202 "
                f"{accepted:.2f} s, final write {done.get('write_seconds', float('nan')):.2f} s"
            )
            print(
                f"             server RSS peak {peak:.0f} MiB, hashing processes "
                f"{pool:.0f} MiB in all"
            )
        await conn.close()
    finally:
        if server is not None:
            stop(server.process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the file")
    parser.add_argument(
        "--no-reimport",
        action="store_true",
        help="import the file once (a re-import costs as long again: one verify per row)",
    )
    args = parser.parse_args()
    with postgres() as maintenance_url, fresh_database(maintenance_url) as dsn:
        asyncio.run(run(dsn, args.rows, reimport=not args.no_reimport))


if __name__ == "__main__":
    main()
