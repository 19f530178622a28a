"""A till's redeem latency while the bureau works: alone, during a holder import, during
the annual XLSX export; and the import's throughput against argon2id alone.

    .venv/bin/python bench/isolation.py [--scale small|full] [--rate 50] [--seconds 30]
        [--workers 2] [--rows N] [--redemptions N] [--group-by partner,offer,category,month]

Uses the PostgreSQL in DATABASE_URL (the URL of a maintenance database: a fresh database
is created there and dropped at the end) or starts the embedded one in a temporary
folder. Seeding: the redeem bench's partners, offers, holders and tokens
(bench/redeem.seed: `--partners` offers, `--holders` holders with a voucher each), and
the report bench's ledger of `--redemptions` redemptions over 2025 (bench/report.seed,
its rollups checked against the ledger). `youdai serve --workers N` runs as an operator
runs it (deploy/compose.yaml: 2 processes), on DATABASE_URL, in a session of its own.

The till load is open loop: one process of its own sends POST /v1/redemptions at a fixed
rate (`--rate` a second, each with another voucher's token and a fresh Idempotency-Key)
whatever the answers do, and each latency counts from the instant the request was due,
not from when it went out, so a server that stalls is charged for every request that
waited behind the stall (no coordinated omission). The load runs without a break from a
warm-up to the end; the phases are intervals of it, and a request belongs to the phase
in which it was due:

- alone: `--seconds` with nothing else, before the import and again after the export
  (both halves pooled, so that the machine's drift counts alike on each side);
- import: from POST /v1/holders/import (a CSV of `--rows` holders, as the bureau sends
  it) to the job's `completed`;
- export: `--seconds` of GET /v1/reports/discounts?format=xlsx for the whole of 2025
  grouped by `--group-by` (one bureau user asking again as soon as a file has arrived).

argon2id alone is the import bench's baseline bounded in time (the import's pool of hashing
processes, at their priority, hashing PINs for `--seconds` with nothing of youdai
running), measured before the server starts and after it stops. `--import-seconds`
measures the import over a window (rows hashed by then) and restarts the server after it
(the job ends failed, nothing written), for a machine where the whole file would take
too long. Goals (issue 30): redeem p99 during the import and
during the export ≤ 1.5× p99 alone; the import's throughput during the till load ≥ 0.8×
argon2id alone. At the end `youdai reconcile` runs on the database. The machine's load
average and busy share per phase are printed next to the figures: on a machine others
share, they say how much of a ratio is the bench's own doing.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder would come first on sys.path, where bench/token.py
# shadows the standard library's `token` module: put the repository root there instead.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[0] = ROOT
# ruff: noqa: E402  (the imports below must come after that)

import argparse
import asyncio
import importlib
import json
import multiprocessing
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
import asyncpg

from bench import report as report_bench
from bench._common import BENCH_SECRET_KEY, free_port, fresh_database, postgres, stop
from bench.redeem import REDEEM_PATH, TOKEN_TTL, percentile, start_service
from bench.redeem import seed as seed_tills
from service.db.pool import init_connection
from service.domain.auth import Role
from service.flows import keys as keys_flow
from service.flows.holder_imports import BATCH_ROWS
from service.pin_hashing import PinHashPool

# bench/import.py: its name is a keyword, so it cannot be imported by a statement.
_import_bench = importlib.import_module("bench.import")
holders_csv = _import_bench.holders_csv

GOAL_LATENCY = 1.5
GOAL_THROUGHPUT = 0.8
SCALES = {
    # rows imported, redemptions in the ledger, seconds per phase alone and exporting
    "small": {"rows": 2_000, "redemptions": 100_000, "seconds": 20.0},
    "full": {"rows": 100_000, "redemptions": 10_000_000, "seconds": 60.0},
}
WARMUP_SECONDS = 5.0
#: A request with no answer after this long counts as failed, at this latency.
REQUEST_TIMEOUT = 30.0


# --- the till: open-loop load in a process of its own ----------------------------------


def till_load(port: int, lines: list[str], rate: float, tag: str, control: Connection) -> None:
    """Send a redeem every 1/rate seconds until told to stop; send back every request's
    (due instant on CLOCK_MONOTONIC, latency from that instant, status; 0: no answer)."""
    asyncio.run(_till_load(port, lines, rate, tag, control))


async def _till_load(
    port: int, lines: list[str], rate: float, tag: str, control: Connection
) -> None:
    url = f"http://127.0.0.1:{port}{REDEEM_PATH}"
    samples: list[tuple[float, float, int]] = []
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(control.fileno(), stopping.set)
    requests = [line.split("\t", 1) for line in lines]

    async def redeem(session: aiohttp.ClientSession, number: int, due: float) -> None:
        auth, body = requests[number % len(requests)]
        headers = {
            "Authorization": auth,
            "Content-Type": "application/json",
            "Idempotency-Key": f"{tag}-{number}",
        }
        status = 0
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            pass
        samples.append((due, time.monotonic() - due, status))

    # No limit on connections: a request that is due goes out at once, never queued here.
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        number = 0
        while not stopping.is_set():
            due = started + number / rate
            delay = due - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stopping.wait(), delay)
                    break
                except TimeoutError:
                    pass
            task = asyncio.create_task(redeem(session, number, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            number += 1
        await asyncio.gather(*tasks)
    control.recv()
    control.send(samples)


class Till:
    """The load process: started, it runs until `samples()`."""

    def __init__(self, port: int, lines: list[str], rate: float) -> None:
        self._control, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(
            target=till_load, args=(port, lines, rate, uuid.uuid4().hex[:8], theirs)
        )
        self.process.start()

    def samples(self) -> list[tuple[float, float, int]]:
        self._control.send("stop")
        found: list[tuple[float, float, int]] = self._control.recv()
        self.process.join()
        return found


async def argon2id_alone(seconds: float) -> float:
    """Rows a second that the import's pool of hashing processes (same processes, same
    priority) hashes with nothing else of youdai running, over `seconds`: bench/import's
    baseline, bounded in time rather than in rows, since on a machine that others keep
    busy background processes may get little of it."""
    batch = [(f"{n:06d}", None) for n in range(BATCH_ROWS)]
    hashed = 0
    async with PinHashPool() as pool:
        await pool.hashes([("000000", None)] * pool.workers)  # start the processes
        started = time.perf_counter()
        deadline = started + seconds
        in_flight = {pool.hashes(batch) for _ in range(pool.workers * 3)}
        while in_flight:
            done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            hashed += sum(len(task.result()) for task in done)
            if time.perf_counter() < deadline:
                in_flight |= {pool.hashes(batch) for _ in done}
        workers = pool.workers
    rate = hashed / (time.perf_counter() - started)
    print(f"argon2id alone: {rate:6.1f} rows/s ({hashed} in {seconds:g} s+, {workers} processes)")
    return rate


# --- the machine ---------------------------------------------------------------------


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of every core since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


@dataclass
class Phase:
    name: str
    start: float = 0.0
    end: float = 0.0
    busy_share: float = 0.0
    load_average: float = 0.0
    note: str = ""


class Timed:
    """A phase's interval on CLOCK_MONOTONIC and the machine's busy share meanwhile."""

    def __init__(self, phase: Phase) -> None:
        self.phase = phase

    def __enter__(self) -> Phase:
        self._ticks = cpu_ticks()
        self.phase.start = time.monotonic()
        return self.phase

    def __exit__(self, *exc_info: object) -> None:
        self.phase.end = time.monotonic()
        busy, total = cpu_ticks()
        self.phase.busy_share = (busy - self._ticks[0]) / max(1, total - self._ticks[1])
        self.phase.load_average = os.getloadavg()[0]


# --- the bureau ----------------------------------------------------------------------


async def import_holders(
    http: aiohttp.ClientSession, base: str, data: bytes, window: float | None
) -> dict:
    """POST the file, then poll its job until it ends, or for `window` seconds at most;
    the job as it ended (or stood)."""
    started = time.monotonic()
    async with http.post(
        f"{base}/v1/holders/import", data=data, headers={"Content-Type": "text/csv"}
    ) as response:
        job = await response.json()
        if response.status != 202:
            raise SystemExit(f"import answered {response.status}: {job}")
    while job["status"] == "running":
        if window is not None and time.monotonic() - started >= window:
            return job
        await asyncio.sleep(0.5)
        async with http.get(f"{base}/v1/holder-imports/{job['id']}") as response:
            job = await response.json()
    if job["status"] != "completed":
        raise SystemExit(f"import failed: {job}")
    return job


async def export_for(
    http: aiohttp.ClientSession, base: str, group_by: str, seconds: float
) -> list[tuple[float, int]]:
    """Full-year XLSX files one after another for `seconds`: (seconds, bytes) of each."""
    params = {"format": "xlsx", "from": "2025-01-01", "to": "2025-12-31", "group_by": group_by}
    files = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or not files:
        started = time.monotonic()
        async with http.get(f"{base}/v1/reports/discounts", params=params) as response:
            body = await response.read()
            if response.status != 200:
                raise SystemExit(f"export answered {response.status}: {body[:300]!r}")
        files.append((time.monotonic() - started, len(body)))
    return files


#: The report bench fills the ledger and its rollups only: the counters the redeem keeps in
#: the same transaction (offers, vouchers) follow here, so that `youdai reconcile` is clean.
_COUNTERS = """
UPDATE offers o SET redeemed_count = l.uses, spent = l.cost
FROM (
    SELECT r.offer_id, count(*) AS uses, sum(r.budget_cost) AS cost
    FROM redemptions r LEFT JOIN reversals x ON x.redemption_id = r.id
    WHERE x.id IS NULL GROUP BY r.offer_id
) l
WHERE l.offer_id = o.id;

UPDATE vouchers v SET uses_left = v.uses_total - l.uses
FROM (
    SELECT r.voucher_id, count(*) AS uses
    FROM redemptions r LEFT JOIN reversals x ON x.redemption_id = r.id
    WHERE x.id IS NULL GROUP BY r.voucher_id
) l
WHERE l.voucher_id = v.id
"""


async def prepare(dsn: str, redemptions: int) -> str:
    """The report bench's ledger on the database that already holds the tills; an admin
    key for the bureau."""
    conn = await asyncpg.connect(dsn, command_timeout=None)
    try:
        await init_connection(conn)
        await conn.execute(report_bench._PARTNERS_AND_HOLDERS)
        await report_bench.seed(conn, redemptions)
        await conn.execute(_COUNTERS)
        await conn.execute("VACUUM ANALYZE offers, vouchers")
        _, key = await keys_flow.issue(
            conn, role=Role.ADMIN, partner_id=None, label="bureau", actor=None
        )
    finally:
        await conn.close()
    return key


def reconcile(dsn: str) -> str:
    """`youdai reconcile` on the benchmark's database: its last line and exit status."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("YOUDAI_")},
        "DATABASE_URL": dsn,
        "YOUDAI_SECRET_KEY": BENCH_SECRET_KEY,
        "YOUDAI_LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [sys.executable, "-m", "service", "reconcile"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return f"exit {done.returncode}: " + "; ".join(lines[:12])


# --- the run -------------------------------------------------------------------------


def latency_line(name: str, samples: list[tuple[float, float, int]]) -> tuple[float, str]:
    latencies = [latency * 1000 for _, latency, _ in samples]
    failed = sum(1 for _, _, status in samples if status != 201)
    p99 = percentile(latencies, 0.99) if latencies else float("nan")
    p50 = percentile(latencies, 0.50) if latencies else float("nan")
    worst = max(latencies, default=float("nan"))
    return p99, (
        f"  {name:<8} {len(samples):6d} redeems  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
        f"max {worst:7.1f} ms" + (f"  FAILED {failed}" if failed else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default="full")
    parser.add_argument("--rate", type=float, default=50.0, help="redeems a second")
    parser.add_argument("--seconds", type=float, help="seconds alone, and exporting")
    parser.add_argument("--rows", type=int, help="holders in the imported file")
    parser.add_argument("--redemptions", type=int, help="redemptions in the ledger")
    parser.add_argument(
        "--import-seconds",
        type=float,
        help="measure the import for this long at most, then stop the server (the job ends "
        "failed, nothing written) and start it again: on a shared machine a 100 000-row "
        "import may take an hour; its throughput is then the rows hashed in the window",
    )
    parser.add_argument("--workers", type=int, default=2, help="youdai serve --workers")
    parser.add_argument("--holders", type=int, default=100, help="holders the tills serve")
    parser.add_argument("--partners", type=int, default=16, help="offers the tills redeem")
    parser.add_argument(
        "--group-by", default="partner,offer,category,month", help="the export's grouping"
    )
    args = parser.parse_args()
    scale = SCALES[args.scale]
    rows = args.rows or int(scale["rows"])
    redemptions = args.redemptions or int(scale["redemptions"])
    seconds = args.seconds or float(scale["seconds"])

    workdir = Path(tempfile.mkdtemp(prefix="youdai-bench-isolation-"))
    service = None
    till = None
    try:
        with postgres(durable=False) as maintenance_url, fresh_database(maintenance_url) as dsn:
            started = time.perf_counter()
            seeded = asyncio.run(seed_tills(dsn, args.holders, args.partners, 1))
            key = asyncio.run(prepare(dsn, redemptions))
            data = holders_csv(rows)
            print(
                f"seeded {len(seeded.spread)} till vouchers and {redemptions:,} redemptions in "
                f"{time.perf_counter() - started:.0f} s; file of {rows:,} holders "
                f"({len(data) / 1024:.0f} KiB); {os.cpu_count()} cores, load average "
                f"{os.getloadavg()[0]:.1f}"
            )
            floor_before = asyncio.run(argon2id_alone(seconds))
            port = free_port()

            def serve() -> subprocess.Popen:
                return start_service(
                    dsn, port, workdir / "service.log", "INFO", workers=args.workers
                )

            service = serve()
            print(
                f"youdai serve --workers {args.workers} (token TTL {TOKEN_TTL} s); till load "
                f"{args.rate:g} redeems/s open loop, warm-up {WARMUP_SECONDS:g} s"
            )
            till = Till(port, seeded.spread, args.rate)
            phases = {name: Phase(name) for name in ("alone", "import", "export", "alone 2")}
            jobs: dict = {}
            files: list[tuple[float, int]] = []

            async def bureau() -> None:
                nonlocal service
                base = f"http://127.0.0.1:{port}"
                headers = {"Authorization": f"Bearer {key}"}
                timeout = aiohttp.ClientTimeout(total=None)
                async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
                    await asyncio.sleep(WARMUP_SECONDS)
                    with Timed(phases["alone"]):
                        await asyncio.sleep(seconds / 2)
                    with Timed(phases["import"]):
                        jobs["import"] = await import_holders(http, base, data, args.import_seconds)
                    if jobs["import"]["status"] == "running":  # the window is over
                        await asyncio.to_thread(stop, service)
                        service = await asyncio.to_thread(serve)
                        await asyncio.sleep(WARMUP_SECONDS)
                    await asyncio.sleep(2)  # the job's last statements settle
                    with Timed(phases["export"]):
                        files.extend(await export_for(http, base, args.group_by, seconds))
                    with Timed(phases["alone 2"]):
                        await asyncio.sleep(seconds / 2)

            asyncio.run(bureau())
            samples = till.samples()
            till = None
            stop(service)
            service = None
            floor_after = asyncio.run(argon2id_alone(seconds))

            def within(*names: str) -> list[tuple[float, float, int]]:
                return [
                    sample
                    for sample in samples
                    for name in names
                    if phases[name].start <= sample[0] < phases[name].end
                ]

            print(
                "redeem latency from the instant each request was due "
                "(busy share of the machine's cores, load average at the phase's end):"
            )
            p99 = {}
            for label, names in (
                ("alone", ("alone", "alone 2")),
                ("import", ("import",)),
                ("export", ("export",)),
            ):
                p99[label], line = latency_line(label, within(*names))
                busy = [phases[name] for name in names]
                print(
                    line
                    + f"  busy {sum(p.busy_share for p in busy) / len(busy):4.0%}  load "
                    + " / ".join(f"{p.load_average:.1f}" for p in busy)
                )
            alone_rate = (floor_before + floor_after) / 2
            import_seconds = phases["import"].end - phases["import"].start
            job = jobs["import"]
            export_times = sorted(s for s, _ in files)
            if job["status"] == "completed":
                done = rows
                what = f"created {job['created']}, updated {job['updated']}"
            else:
                done = job["done"]
                what = f"window of {args.import_seconds:g} s: {done:,} of {rows:,} rows hashed"
            print(
                f"import: {done:,} rows in {import_seconds:.1f} s ({done / import_seconds:.0f} "
                f"rows/s, {what}); argon2id alone {alone_rate:.1f} rows/s (mean of before "
                "and after)"
            )
            print(
                f"export: {len(files)} XLSX files of {files[0][1] / 1024:.0f} KiB "
                f"(group_by={args.group_by}), median {export_times[len(files) // 2]:.2f} s, "
                f"slowest {export_times[-1]:.2f} s"
            )
            verdicts = []
            for label in ("import", "export"):
                ratio = p99[label] / p99["alone"]
                verdicts.append(ratio <= GOAL_LATENCY)
                print(
                    f"redeem p99 during the {label} / alone: {ratio:.2f}x  (goal <= "
                    f"{GOAL_LATENCY}x: {'met' if verdicts[-1] else 'MISSED'})"
                )
            throughput = (done / import_seconds) / alone_rate
            verdicts.append(throughput >= GOAL_THROUGHPUT)
            print(
                f"import throughput during the till load / argon2id alone: {throughput:.2f}x  "
                f"(goal >= {GOAL_THROUGHPUT}x: {'met' if verdicts[-1] else 'MISSED'})"
            )
            print(f"youdai reconcile: {reconcile(dsn)}")
            print(json.dumps({"p99_ms": p99, "import_throughput_ratio": round(throughput, 3)}))
    finally:
        if till is not None:
            till.process.kill()
        if service is not None:
            stop(service)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
