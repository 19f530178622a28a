"""Redeem throughput of `youdai serve --workers 1` against `--workers 2`, in the same run.

    .venv/bin/python bench/workers.py [--seconds 10] [--warmup 3] [--rounds 4] [--clients 16]
        [--holders 300] [--partners 16] [--load wrk|aiohttp] [--log-level INFO]

The database, the seeding and the load are bench/redeem.py's "service, spread" side:
POST /v1/redemptions with a scanner key, another voucher's token and a fresh
Idempotency-Key each time, over `--partners` offers. Both servers are started the way
an operator starts them (`youdai serve --workers N` on DATABASE_URL: one process for
1, a parent and N spawned workers sharing the port with SO_REUSEPORT for more, each
worker with its own pool) and stay up for the whole run; after one unmeasured pass on
both, each round measures both (order 1 2, 2 1, 2 1, 1 2, …), each after `--warmup`
seconds of the same load. The load generator runs in its own process, on the same
cores as the workers and PostgreSQL: everything on this machine shares its cores, as
the CPU figures show. Goal (issue 19, replacing issue 9's "2 workers ≥ 1.6× one",
which 2 cores shared with PostgreSQL and the load cannot show): 2 workers reach ≥ 0.9×
the CPU ceiling printed below.

A control line does the same for GET /healthz, which touches no database: what the
workers alone do with the cores when PostgreSQL does not need its share of them.

The ceiling line says what the cores allow at all: a redeem costs CPU in the workers,
in PostgreSQL and in the load generator, all on this machine's cores, so no number of
workers can serve more than cores / (CPU per request) redeems a second. Divided by one
worker's rate, that is the most any --workers N could gain here; "busy" is the share of
the whole machine's CPU time in use while each side ran.
"""

from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ruff: noqa: E402  (the imports below must come after that)

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psutil

from bench._common import free_port, fresh_database, postgres, stop
from bench.redeem import (
    REDEEM_PATH,
    CpuMeter,
    Result,
    add_load_arguments,
    check_ledger,
    http_load,
    postmaster_pid,
    seed,
    start_service,
    summary,
)
from service.config import load_settings

#: The share of the CPU ceiling 2 workers must reach.
GOAL = 0.9
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_get(port: int, path: str, clients: int, seconds: float) -> Result:
    """GET `path` with wrk (no script): its own rate and latency percentiles."""
    completed = subprocess.run(
        [
            "wrk",
            *("-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency"),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    out = completed.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if completed.returncode != 0 or rate is None:
        raise SystemExit(f"wrk failed:\n{out}\n{completed.stderr}")
    latency = {
        share: float(value) * _UNITS[unit]
        for share, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)
    }
    total = re.search(r"(\d+) requests in", out)
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Result(
        rate=float(rate.group(1)),
        p50_ms=latency.get("50", float("nan")),
        p99_ms=latency.get("99", float("nan")),
        answers=int(total.group(1)) if total else 0,
        failures=int(failed.group(1)) if failed else 0,
    )


def busy_share(before: psutil._common.scputimes, after: psutil._common.scputimes) -> float:
    """The share of the machine's CPU time (all cores) spent not idle between two readings."""
    spent = {name: getattr(after, name) - getattr(before, name) for name in after._fields}
    total = sum(spent.values())
    idle = spent["idle"] + spent.get("iowait", 0.0)
    return (total - idle) / total if total else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(
        parser, rounds="even: each goes first as often", partners="offers the load uses"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="youdai-bench-workers-"))
    servers: dict[int, object] = {}
    try:
        with postgres() as maintenance_url, fresh_database(maintenance_url) as dsn:
            started = time.perf_counter()
            seeded = asyncio.run(seed(dsn, args.holders, args.partners, hot_scanners=1))
            lines = workdir / "spread.lines"
            lines.write_text("\n".join(seeded.spread) + "\n")
            facts = seeded.server_facts
            print(
                f"seeded {len(seeded.spread)} vouchers on {args.partners} offers in "
                f"{time.perf_counter() - started:.0f} s; PostgreSQL {facts['server_version']} "
                f"(fsync {facts['fsync']}, synchronous_commit {facts['synchronous_commit']}); "
                f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the run"
            )
            ports = {workers: free_port() for workers in (1, 2)}
            for workers, port in ports.items():
                servers[workers] = start_service(
                    dsn,
                    port,
                    workdir / f"workers-{workers}.log",
                    args.log_level.upper(),
                    workers=workers,
                )
            settings = load_settings({})
            print(
                f"load: {args.load} in its own process, {args.clients} connections, "
                f"{args.warmup:g} s warm-up + {args.seconds:g} s per side, {args.rounds} "
                f"rounds; pool {settings.db_pool_min}–{settings.db_pool_max} per worker; "
                f"log level {args.log_level.upper()}"
            )
            meter = CpuMeter(postmaster_pid(dsn))
            nonce = uuid.uuid4().hex[:8]

            control = shutil.which("wrk") is not None

            def measure(
                workers: int, round_index: int, seconds: float, warm: bool, healthz: bool = False
            ) -> Result:
                tag = f"{nonce}-{round_index}-{workers}-{'w' if warm else 'm'}"
                pid = servers[workers].pid  # type: ignore[attr-defined]
                before = meter.snapshot(pid)
                machine_before = psutil.cpu_times()
                if healthz:
                    result = wrk_get(ports[workers], "/healthz", args.clients, seconds)
                else:
                    result = http_load(
                        args.load, ports[workers], REDEEM_PATH, lines, args.clients, seconds, tag
                    )
                result.cpu = meter.per_answer(before, meter.snapshot(pid), result.answers)
                if not warm:
                    busy[workers, healthz].append(busy_share(machine_before, psutil.cpu_times()))
                return result

            busy: dict[tuple[int, bool], list[float]] = {
                (workers, healthz): [] for workers in (1, 2) for healthz in (False, True)
            }
            results: dict[int, list[Result]] = {1: [], 2: []}
            controls: dict[int, list[Result]] = {1: [], 2: []}
            # The tables start empty: a first pass on both lets autovacuum's and the
            # planner's early work on them happen before anything is measured.
            for workers in (1, 2):
                measure(workers, -1, max(args.warmup, 1.0), warm=True)
            for round_index in range(args.rounds):
                # 1 2, 2 1, 2 1, 1 2, …: each goes first as often as the other.
                first = (1, 2) if round_index % 4 in (0, 3) else (2, 1)
                for workers in first:
                    if args.warmup > 0:
                        measure(workers, round_index, args.warmup, warm=True)
                    results[workers].append(measure(workers, round_index, args.seconds, False))
                    if control:
                        controls[workers].append(
                            measure(workers, round_index, args.seconds, False, healthz=True)
                        )
                print(
                    f"round {round_index + 1}: 1 worker {results[1][-1].rate:.0f}/s  "
                    f"2 workers {results[2][-1].rate:.0f}/s  "
                    f"(load average {os.getloadavg()[0]:.1f})"
                )
            for server in servers.values():
                stop(server)  # type: ignore[arg-type]
            servers.clear()
            medians = {workers: summary(results[workers]) for workers in (1, 2)}
            print("medians over the rounds (CPU: all server processes, PostgreSQL, load):")
            for workers in (1, 2):
                label = f"youdai serve --workers {workers}"
                share = statistics.median(busy[workers, False])
                print(f"  {label:<26} {medians[workers].line()}  busy {share:.0%}")
            cores = os.cpu_count() or 1
            per_request = sum(ms for ms in medians[2].cpu.values() if ms == ms)
            ceiling = cores * 1000 / per_request
            print(
                f"ceiling: {cores} cores / {per_request:.2f} ms of CPU per redeem (server + "
                f"PostgreSQL + load, measured with 2 workers) = {ceiling:.0f} req/s, "
                f"{ceiling / medians[1].rate:.2f}x one worker's rate: the most any number "
                "of workers could reach on this machine"
            )
            ratio = medians[2].rate / medians[1].rate
            each = [b.rate / a.rate for a, b in zip(results[1], results[2], strict=True)]
            reached = medians[2].rate / ceiling
            verdict = "met" if reached >= GOAL else "MISSED"
            print(f"2 workers reach {reached:.2f}x the CPU ceiling (goal ≥ {GOAL}x: {verdict})")
            print(
                f"2 workers / 1 worker {ratio:.2f}x  (rounds {min(each):.2f}–{max(each):.2f}; "
                f"median of the rounds {statistics.median(each):.2f}x; at most "
                f"{ceiling / medians[1].rate:.2f}x here, the ceiling's)"
            )
            if control:
                healthz = {workers: summary(controls[workers]) for workers in (1, 2)}
                print("control, GET /healthz (no database):")
                for workers in (1, 2):
                    label = f"youdai serve --workers {workers}"
                    share = statistics.median(busy[workers, True])
                    print(f"  {label:<26} {healthz[workers].line()}  busy {share:.0%}")
                print(f"  2 workers / 1 worker {healthz[2].rate / healthz[1].rate:.2f}x")
            print(check_ledger(dsn, seeded.baseline_offer_ids))
            failures = sum(m.failures for m in medians.values())
            if failures:
                print(f"{failures} requests failed; logs in {workdir}")
                return 1
    finally:
        for server in servers.values():
            stop(server)  # type: ignore[arg-type]
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
