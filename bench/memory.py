"""Resident memory of each `youdai serve --workers N` process after 10 000 mixed requests.

    .venv/bin/python bench/memory.py [--requests 10000] [--workers 2] [--clients 16]

Starts `youdai serve --workers N --demo` as a subprocess: on the embedded PostgreSQL in a
temporary folder, or, when DATABASE_URL is set (the URL of a maintenance database), on a
fresh database created there and dropped at the end. With the printed demo keys it
seeds a benchmark offer at the demo post office (no limits, so redeeming never runs
dry) and a few card holders, each signed in with a voucher for it. Then `--clients`
concurrent client tasks send `--requests` requests in this mix:

    healthz 15 %, GET /v1/partners 15 %, GET /v1/offers 5 % (admin key), GET /v1/me/offers
    10 %, GET /v1/me/vouchers/{id}/token 15 % (holder session), preview 15 %, redeem with an
    Idempotency-Key 15 % (one in ten a retry of an earlier key, answered as a replay),
    GET /v1/redemptions 5 %, reversal of an earlier redemption 4 % (scanner key),
    holder sign-in 1 % (card + PIN: argon2id, 19 MiB per hash).

Every answer's status is checked against the one expected. The figures are each
worker's RSS once /readyz answers (before seeding) and after the run, its peak RSS
(VmHWM) and its unique set size (USS) after the run — read with psutil from the worker
processes (the children that `serve` spawned); the parent only waits for them.
Goal (issue 9 item 7): every worker < 100 MB RSS after the run.

The service gets this script's environment (less YOUDAI_* and DATABASE_URL), so glibc
malloc settings such as MALLOC_MMAP_THRESHOLD_=131072 can be tried on the command line.
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
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

from bench._common import (
    MIB,
    free_port,
    fresh_database,
    memory_mib,
    service_env,
    stop,
    wait_ready,
)

GOAL_MB = 100
PIN = "135790"

#: (kind, weight in percent); see the module docstring.
MIX = [
    ("healthz", 15),
    ("partners", 15),
    ("offers", 5),
    ("my_offers", 10),
    ("token", 15),
    ("preview", 15),
    ("redeem", 15),
    ("redemptions", 5),
    ("reverse", 4),
    ("sign_in", 1),
]


@dataclass
class Holder:
    card: str
    session: dict[str, str] = field(default_factory=dict)
    voucher_id: str = ""
    token: str = ""


@dataclass
class State:
    base: str
    admin: dict[str, str]
    scanner: dict[str, str]
    holders: list[Holder]
    redeemed: list[tuple[str, str]] = field(default_factory=list)  # (idempotency key, body)
    to_reverse: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)  # (kind, status) -> count
    first_unexpected: dict[tuple[str, int], str] = field(default_factory=dict)


class Unexpected(Exception):
    """An answer with another status than expected."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def start_server(
    env: dict[str, str], port: int, workers: int, log: Path | None
) -> tuple[subprocess.Popen, str]:
    """`youdai serve --demo` and its printout (read until the last URL line)."""
    command = [sys.executable, "-m", "service", "serve", "--demo"]
    command += ["--workers", str(workers), "--port", str(port)]
    stderr = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert process.stdout is not None
    lines = []
    while True:
        line = process.stdout.readline()
        if not line:
            raise SystemExit("youdai serve --demo exited:\n" + "".join(lines))
        lines.append(line)
        if "wallet page" in line:
            return process, "".join(lines)


def workers_of(server: psutil.Process) -> list[psutil.Process]:
    """The serving processes: the children `serve` spawned (multiprocessing spawn)."""
    return [
        child
        for child in server.children()
        if "spawn_main" in " ".join(child.cmdline()) and "resource_tracker" not in child.cmdline()
    ]


def memory(process: psutil.Process) -> dict[str, float]:
    info = process.memory_full_info()
    peak = memory_mib(process.pid, "VmHWM")
    return {"rss": info.rss / MIB, "uss": info.uss / MIB, "peak": peak}


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    expected: int | tuple[int, ...],
    **kwargs: object,
) -> dict:
    async with session.request(method, url, **kwargs) as answer:
        body = await answer.json() if answer.content_type.endswith("json") else {}
        expected = (expected,) if isinstance(expected, int) else expected
        if answer.status not in expected:
            raise Unexpected(f"{method} {url}: {answer.status} {body}", answer.status)
        return body


async def seed(session: aiohttp.ClientSession, base: str, printout: str, holders: int) -> State:
    admin = bearer(re.search(r"admin key\s+(\S+)", printout).group(1))
    scanner = bearer(re.search(r"scanner key\s+(\S+)", printout).group(1))
    partner_id = re.search(r"partner (ptn_\w+)", printout).group(1)
    offer = await call(
        session,
        "POST",
        f"{base}/v1/offers",
        201,
        headers=admin,
        json={
            "partner_id": partner_id,
            "title": "压测九五折",
            "kind": "percent_off",
            "percent_bp": 500,
            "uses_per_voucher": 10_000,
        },
    )
    await call(
        session, "PATCH", f"{base}/v1/offers/{offer['id']}", 200, headers=admin,
        json={"status": "active"},
    )  # fmt: skip
    state = State(base, admin, scanner, [])
    for number in range(holders):
        card = f"BENCH-{uuid.uuid4().hex[:8]}-{number}"
        await call(
            session,
            "POST",
            f"{base}/v1/holders",
            201,
            headers=admin,
            json={
                "card_number": card,
                "category": "veteran",
                "display_name": f"压测 {number}",
                "valid_until": "2035-12-31",
                "pin": PIN,
            },
        )
        holder = Holder(card.upper())
        await sign_in(session, state, holder)
        voucher = await call(
            session, "POST", f"{base}/v1/me/vouchers", 201, headers=holder.session,
            json={"offer_id": offer["id"]},
        )  # fmt: skip
        holder.voucher_id = voucher.id
        await refresh_token(session, state, holder)
        state.holders.append(holder)
    return state


async def sign_in(session: aiohttp.ClientSession, state: State, holder: Holder) -> None:
    answer = await call(
        session, "POST", f"{state.base}/v1/holder-sessions", 201,
        json={"card_number": holder.card, "pin": PIN},
    )  # fmt: skip
    holder.session = bearer(answer["token"])


async def refresh_token(session: aiohttp.ClientSession, state: State, holder: Holder) -> None:
    answer = await call(
        session,
        "GET",
        f"{state.base}/v1/me/vouchers/{holder.voucher_id}/token",
        200,
        headers=holder.session,
    )
    holder.token = answer["token"]


async def one_request(
    session: aiohttp.ClientSession, state: State, kind: str, rng: random.Random
) -> None:
    """Send one request of the mix; an unexpected answer is counted, not fatal."""
    if kind == "reverse" and not state.to_reverse:
        kind = "redeem"
    state.counts[kind] += 1
    try:
        await _one_request(session, state, kind, rng)
    except Unexpected as error:
        state.unexpected[(kind, error.status)] += 1
        state.first_unexpected.setdefault((kind, error.status), str(error))


async def _one_request(
    session: aiohttp.ClientSession, state: State, kind: str, rng: random.Random
) -> None:
    base, holder = state.base, rng.choice(state.holders)
    if kind == "healthz":
        await call(session, "GET", f"{base}/healthz", 200)
    elif kind == "partners":
        await call(session, "GET", f"{base}/v1/partners?limit=20", 200, headers=state.admin)
    elif kind == "offers":
        await call(session, "GET", f"{base}/v1/offers?limit=20", 200, headers=state.admin)
    elif kind == "my_offers":
        await call(session, "GET", f"{base}/v1/me/offers", 200, headers=holder.session)
    elif kind == "token":
        await refresh_token(session, state, holder)
    elif kind == "sign_in":
        await sign_in(session, state, holder)
    elif kind == "preview":
        await call(
            session, "POST", f"{base}/v1/redemptions/preview", 200, headers=state.scanner,
            json={"token": holder.token, "purchase_amount": rng.randrange(100, 50_000)},
        )  # fmt: skip
    elif kind == "redeem":
        if state.redeemed and rng.random() < 0.1:
            key, body = rng.choice(state.redeemed)  # a till retrying: a replay
        else:
            key = uuid.uuid4().hex
            body = {"token": holder.token, "purchase_amount": rng.randrange(100, 50_000)}
        answer = await call(
            session, "POST", f"{base}/v1/redemptions", 201,
            headers={**state.scanner, "Idempotency-Key": key}, json=body,
        )  # fmt: skip
        if (key, body) not in state.redeemed:
            state.redeemed.append((key, body))
            state.to_reverse.append(answer["id"])
    elif kind == "redemptions":
        await call(session, "GET", f"{base}/v1/redemptions?limit=20", 200, headers=state.admin)
    elif kind == "reverse":
        redemption_id = state.to_reverse.pop(rng.randrange(len(state.to_reverse)))
        await call(
            session, "POST", f"{base}/v1/redemptions/{redemption_id}/reversal", 201,
            headers=state.scanner, json={"reason": "refund"},
        )  # fmt: skip


async def load(state: State, requests: int, clients: int) -> float:
    rng = random.Random(20261125)
    kinds = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=requests)
    queue = iter(kinds)
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for kind in queue:
                await one_request(session, state, kind, rng)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - started


def table(rows: list[tuple[str, int, dict[str, float], dict[str, float]]]) -> str:
    lines = [
        f"{'process':<10}{'pid':>8}{'RSS ready':>11}{'RSS after':>11}{'peak RSS':>11}"
        f"{'USS after':>11}"
    ]
    for name, pid, ready, after in rows:
        lines.append(
            f"{name:<10}{pid:>8}{ready['rss']:>8.1f} MB{after['rss']:>8.1f} MB"
            f"{after['peak']:>8.1f} MB{after['uss']:>8.1f} MB"
        )
    return "\n".join(lines)


async def run(env: dict[str, str], args: argparse.Namespace, where: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process, printout = start_server(env, port, args.workers, args.server_log)
    try:
        server = psutil.Process(process.pid)
        wait_ready(f"{base}/readyz", process, interval=0.1)
        async with aiohttp.ClientSession() as session:
            await asyncio.sleep(1)  # every worker up, not only the one that answered
            workers = workers_of(server)
            if len(workers) != args.workers:
                raise SystemExit(f"found {len(workers)} worker processes, not {args.workers}")
            ready = {p.pid: memory(p) for p in [server, *workers]}
            state = await seed(session, base, printout, args.holders)
        seconds = await load(state, args.requests, args.clients)
        after = {p.pid: memory(p) for p in [server, *workers]}
        extra = [c for w in workers for c in w.children(recursive=True)]
    finally:
        stop(process)

    print(
        f"youdai serve --workers {args.workers} ({where}): {args.requests} mixed requests "
        f"from {args.clients} clients in {seconds:.1f} s ({args.requests / seconds:.0f} req/s)"
    )
    print("requests: " + ", ".join(f"{k} {state.counts[k]}" for k, _ in MIX))
    rows = [(f"worker {i}", w.pid, ready[w.pid], after[w.pid]) for i, w in enumerate(workers, 1)]
    rows.append(("parent", server.pid, ready[server.pid], after[server.pid]))
    print(table(rows))
    if state.unexpected:
        print(f"unexpected answers: {sum(state.unexpected.values())}")
        for (kind, status), count in sorted(state.unexpected.items()):
            first = state.first_unexpected[(kind, status)]
            print(f"  {kind} -> {status}: {count}x, first: {first[:300]}")
    else:
        print("unexpected answers: none")
    if extra:
        print(f"(plus {len(extra)} helper processes of the workers, not counted above)")
    worst = max(after[w.pid]["rss"] for w in workers)
    verdict = "met" if worst < GOAL_MB else "MISSED"
    print(f"goal: every worker < {GOAL_MB} MB RSS -> {verdict} (largest {worst:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--holders", type=int, default=8)
    parser.add_argument("--server-log", type=Path, help="write the service's log here")
    args = parser.parse_args()
    env = service_env(YOUDAI_LOG_LEVEL="WARNING", YOUDAI_LOG_FORMAT="json")
    maintenance_url = os.environ.get("DATABASE_URL")
    if maintenance_url:
        with fresh_database(maintenance_url) as dsn:
            env = service_env(
                DATABASE_URL=dsn, YOUDAI_LOG_LEVEL="WARNING", YOUDAI_LOG_FORMAT="json"
            )
            asyncio.run(run(env, args, "PostgreSQL at DATABASE_URL"))
        return
    # No DATABASE_URL: `youdai serve` starts its own embedded PostgreSQL, as it does
    # for an operator, and its processes are measured as they run then.
    folder = Path(tempfile.mkdtemp(prefix="youdai-bench-memory-"))
    try:
        asyncio.run(run({**env, "YOUDAI_DATA_DIR": str(folder)}, args, "embedded PostgreSQL"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
