"""What the benchmarks share: a PostgreSQL to run on, a fresh database on it, a free port,
a server in a subprocess (its environment, waiting for it, stopping it) and reading the
processes it spawned.

The scripts import this as bench._common once they have put the repository root first
on sys.path (each one's first lines), so that bench/token.py shadows nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service.db.embedded import EmbeddedPostgres
from service.sealing import generate_secret_key

#: The YOUDAI_SECRET_KEY of this run: with DATABASE_URL, the service needs one given.
BENCH_SECRET_KEY = generate_secret_key()

MIB = 1024 * 1024


# --- PostgreSQL -----------------------------------------------------------------------


@contextlib.contextmanager
def postgres(*, durable: bool = True) -> Iterator[str]:
    """The URL of a maintenance database: DATABASE_URL's, or that of an embedded server
    started in a temporary folder and removed afterwards.

    `durable=False` lets the embedded server skip fsync and full page writes, its data
    being thrown away anyway, so that seeding millions of rows need not wait for the
    disk; a server named by DATABASE_URL is never reconfigured.
    """
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    data_dir = Path(tempfile.mkdtemp(prefix="youdai-bench-pg-"))
    embedded = EmbeddedPostgres(data_dir)
    try:
        maintenance_url = embedded.start()
        if not durable:
            asyncio.run(_throwaway_durability(maintenance_url))
        yield maintenance_url
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def _throwaway_durability(maintenance_url: str) -> None:
    conn = await asyncpg.connect(maintenance_url)
    try:
        for setting, value in (
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("max_wal_size", "'8GB'"),
        ):
            await conn.execute(f"ALTER SYSTEM SET {setting} = {value}")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


async def create_database(maintenance_url: str) -> str:
    """A new, empty database on the server of `maintenance_url`; its URL."""
    name = f"youdai_bench_{uuid.uuid4().hex[:10]}"
    await _maintenance(maintenance_url, f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(maintenance_url)._replace(path="/" + name))


async def drop_database(maintenance_url: str, url: str) -> None:
    """Drop the database of `url` (made by create_database), connections and all."""
    name = urlsplit(url).path.lstrip("/")
    await _maintenance(maintenance_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _maintenance(maintenance_url: str, statement: str) -> None:
    conn = await asyncpg.connect(maintenance_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(maintenance_url: str) -> Iterator[str]:
    """A new, empty database's URL, dropped afterwards (for a script's main, outside any
    event loop)."""
    url = asyncio.run(create_database(maintenance_url))
    try:
        yield url
    finally:
        asyncio.run(drop_database(maintenance_url, url))


# --- servers in subprocesses ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(**settings: str) -> dict[str, str]:
    """This process's environment less YOUDAI_* and DATABASE_URL, plus `settings`: the
    service under test reads only what the benchmark gives it (other variables, such as
    glibc's MALLOC_*, still pass through)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("YOUDAI_") and key != "DATABASE_URL"
    }
    if settings.get("DATABASE_URL"):
        env["YOUDAI_SECRET_KEY"] = BENCH_SECRET_KEY
    env.update(settings)
    return env


def wait_ready(
    url: str, process: subprocess.Popen, timeout: float = 60, interval: float = 0.2
) -> None:
    """Poll `url` until it answers 200; stop early if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:  # refused, reset, timed out, or an HTTP error such as 503
            pass
        time.sleep(interval)
    raise SystemExit(f"{url} did not answer within {timeout:g} s")


def stop(process: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM the process, and the processes it spawned when it leads a process group of
    its own (start_new_session=True); SIGKILL after `timeout` seconds."""
    if process.poll() is not None:
        return
    _signal(process, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL)
        process.wait()


def _signal(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)


# --- processes ---------------------------------------------------------------------------


def memory_mib(pid: int, line: str = "VmRSS") -> float:
    """A memory figure of /proc/<pid>/status (VmRSS, VmHWM for the peak, …) in MiB; 0 once
    the process is gone."""
    try:
        for entry in Path(f"/proc/{pid}/status").read_text().splitlines():
            if entry.startswith(f"{line}:"):
                return int(entry.split()[1]) * 1024 / MIB
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (its children, theirs, …), read from /proc."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            todo.extend(children - found)
            found |= children
    return found


# --- ledger rows loaded in bulk ---------------------------------------------------------

#: The sequencer's watermark moved past every ledger row (migration 0021): for rows a
#: benchmark loads in bulk together with their log or their rollups, which the sequencer
#: must then neither append nor fold again.
WATERMARK_PAST_ALL = """
    INSERT INTO ledger_watermark (xact_id, kind, id)
    SELECT xact_id, kind, id FROM (
        (SELECT xact_id, 0 AS kind, id FROM redemptions WHERE xact_id IS NOT NULL
         ORDER BY xact_id DESC, id DESC LIMIT 1)
        UNION ALL
        (SELECT xact_id, 1, id FROM reversals WHERE xact_id IS NOT NULL
         ORDER BY xact_id DESC, id DESC LIMIT 1)
    ) last ORDER BY 1 DESC, 2 DESC LIMIT 1
    ON CONFLICT (one) DO UPDATE
    SET xact_id = EXCLUDED.xact_id, kind = EXCLUDED.kind, id = EXCLUDED.id
"""
