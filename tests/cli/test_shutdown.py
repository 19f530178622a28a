"""SIGTERM/SIGINT during a burst: `youdai serve` stops accepting, answers every request
it had started, closes its pools, stops an embedded PostgreSQL last, and exits 0.

The burst is held in flight by a lock the test takes on the vouchers table: every
redemption waits inside its transaction until the test lets go, after the signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import cast

import aiohttp
import asyncpg
import pytest

from service.config import load_settings
from service.db.pool import init_connection
from service.server import HANDSHAKE_GRACE, Listener
from tests.cli.test_serve import postmaster_running
from tests.conftest import cli_env, free_port
from tests.helpers import Till

pytestmark = pytest.mark.slow

BURST = 20


class Served:
    """`youdai serve` in a subprocess, its stderr log lines collected as they come."""

    def __init__(self, env: dict[str, str], port: int, workers: int) -> None:
        self.port = port
        self.lines: list[str] = []
        argv = ["serve", "--port", str(port), "--workers", str(workers)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def messages(self, message: str) -> list[dict]:
        found = []
        for line in list(self.lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("message") == message:
                found.append(record)
        return found

    def wait_serving(self, workers: int, timeout: float = 90) -> None:
        """Until every worker listens (each logs `serving` once its socket is open)."""
        deadline = time.monotonic() + timeout
        while len(self.messages("serving")) < workers:
            if self.process.poll() is not None:
                raise AssertionError("youdai serve exited:\n" + "".join(self.lines))
            assert time.monotonic() < deadline, "youdai serve did not start:\n" + "".join(
                self.lines
            )
            time.sleep(0.1)

    def wait_exit(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def connection_refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
    return False


def listener_gone(port: int) -> bool:
    """connection_refused, for a probe sent while the listener closes: its SYN is then
    dropped (service.server.refuse_new_handshakes), so its connect times out rather than
    being refused; either way nothing accepts it. A reset would mean a connection the
    kernel had queued was closed unanswered: the fault this file is here to find."""
    try:
        return connection_refused(port)
    except TimeoutError:
        return True


def embedded_url(pgdata: Path) -> str:
    """The URL of the application database of a running embedded server."""
    socket_dir = (pgdata / "postmaster.pid").read_text().splitlines()[4]
    return f"postgresql://postgres@/youdai?host={socket_dir}"


async def redeem(http: aiohttp.ClientSession, port: int, till: Till, token: str) -> int:
    async with http.post(
        f"http://127.0.0.1:{port}/v1/redemptions",
        json={"token": token, "purchase_amount": 10000},
        headers={**till.scanner, "Idempotency-Key": uuid.uuid4().hex},
    ) as answer:
        await answer.read()
        return answer.status


async def lock_waiters(db: asyncpg.Connection) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'youdai' AND wait_event_type = 'Lock'"
    )


@pytest.mark.parametrize(
    ("database", "workers", "signum"),
    [
        ("external", 1, signal.SIGTERM),
        ("external", 2, signal.SIGTERM),
        ("embedded", 2, signal.SIGINT),
    ],
    ids=["one-process", "two-workers", "embedded-two-workers-sigint"],
)
async def test_signal_during_a_burst_answers_every_started_request_and_exits_0(
    database: str, workers: int, signum: int, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    extra = {"YOUDAI_DATA_DIR": str(tmp_path / "data"), "YOUDAI_DB_POOL_MAX": str(BURST + 5)}
    if database == "external":
        extra["DATABASE_URL"] = database_url
    served = Served(cli_env(**extra), port, workers)
    async with contextlib.AsyncExitStack() as opened:
        opened.callback(served.kill)
        served.wait_serving(workers)
        dsn = database_url if database == "external" else embedded_url(tmp_path / "data/pgdata")
        db = await asyncpg.connect(dsn)
        opened.push_async_callback(db.close)
        await init_connection(db)
        till = await Till(db, load_settings({})).open()
        tokens = [till.token] + [(await till.new_voucher())[1] for _ in range(BURST - 1)]

        # Closed on every path, so that a failure here leaves no lock behind.
        locker = await asyncpg.connect(dsn)
        opened.push_async_callback(locker.close)
        hold = locker.transaction()
        await hold.start()
        await locker.execute("LOCK TABLE vouchers IN EXCLUSIVE MODE")
        connector = aiohttp.TCPConnector(force_close=True, limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        ) as http:
            burst = [asyncio.create_task(redeem(http, port, till, token)) for token in tokens]
            deadline = time.monotonic() + 30
            while await lock_waiters(db) < BURST:  # every request is inside its transaction
                assert time.monotonic() < deadline, f"only {await lock_waiters(db)} in flight"
                await asyncio.sleep(0.05)

            served.process.send_signal(signum)
            deadline = time.monotonic() + 5
            while not await asyncio.to_thread(listener_gone, port):
                assert time.monotonic() < deadline, "still accepting connections after the signal"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            assert not any(task.done() for task in burst), "the burst was not held in flight"
            assert served.process.poll() is None, "exited with requests in flight"

            await hold.rollback()  # the requests may go on now
            answers = await asyncio.gather(*burst, return_exceptions=True)
        assert answers == [201] * BURST, answers
        if database == "external":
            assert await db.fetchval("SELECT count(*) FROM redemptions") == BURST
        await locker.close()
        await db.close()
        assert served.wait_exit() == 0, "".join(served.lines)
    assert connection_refused(port)
    assert len(served.messages("stopped")) == workers  # every worker closed its pool and ended
    if database == "embedded":
        assert not postmaster_running(tmp_path / "data/pgdata"), "embedded server outlived it"


# --- Nothing that reached the machine is reset (docs/running.md) ------------------------------

ROUNDS = 10
FRESH_CONNECTIONS = 40


async def fresh_request(port: int, path: str) -> str:
    """One request on a connection of its own: "answered", or what went wrong."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as error:  # refused: the listener was gone before the handshake
        return type(error).__name__
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=30)
    except OSError as error:  # reset
        return type(error).__name__
    finally:
        writer.close()
    return "answered" if answer.startswith(b"HTTP/1.1 ") else f"no answer: {answer[:40]!r}"


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
async def test_sigterm_resets_no_connection_that_reached_the_listener(
    workers: int, database_url: str, tmp_path: Path
) -> None:
    failures: list[str] = []
    for _ in range(ROUNDS if workers == 1 else ROUNDS // 2):
        port = free_port()
        env = cli_env(
            DATABASE_URL=database_url,
            YOUDAI_DATA_DIR=str(tmp_path / "data"),
            YOUDAI_SHUTDOWN_DELAY="0",  # stop accepting at once: the hardest case
        )
        served = Served(env, port, workers)
        try:
            served.wait_serving(workers)
            requests = [
                asyncio.create_task(fresh_request(port, ("/readyz", "/healthz")[i % 2]))
                for i in range(FRESH_CONNECTIONS)
            ]
            await asyncio.sleep(0.02)
            served.process.send_signal(signal.SIGTERM)
            outcomes = await asyncio.gather(*requests)
            assert await asyncio.to_thread(served.wait_exit) == 0, "".join(served.lines)
        finally:
            served.kill()
        failures += [outcome for outcome in outcomes if outcome != "answered"]
    assert failures == [], f"{len(failures)} requests without an answer: {sorted(set(failures))}"


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


@pytest.mark.skipif(sys.platform != "linux", reason="a Linux socket filter")
async def test_a_closing_listener_lets_no_new_handshake_into_its_queue() -> None:
    """What makes the last drain of Listener.close final (docs/running.md): once closing
    begins, a new client's handshake does not complete, so nothing can join the accept
    queue between the last accept and the close, where it would be reset. A client that
    connected before is answered."""
    listener = Listener(_Echo)
    port = free_port()
    await listener.open("127.0.0.1", port, reuse_port=False)
    with socket.create_connection(("127.0.0.1", port)) as before, socket.socket() as late:
        closing = asyncio.create_task(listener.close())
        await asyncio.sleep(HANDSHAKE_GRACE / 4)  # close() waits out the grace meanwhile
        assert not closing.done()
        late.setblocking(False)
        assert late.connect_ex(("127.0.0.1", port)) == errno.EINPROGRESS
        await asyncio.sleep(HANDSHAKE_GRACE / 2)  # loopback completes one in microseconds
        _, writable, _ = select.select([], [late], [], 0)
        assert writable == [], "a handshake completed while the listener was closing"
        await closing
        loop = asyncio.get_running_loop()
        before.setblocking(False)
        await loop.sock_sendall(before, b"still answered")
        assert await asyncio.wait_for(loop.sock_recv(before, 100), 5) == b"still answered"


async def get_status(port: int, path: str) -> tuple[int, str]:
    """Status and Connection header of a GET on a fresh connection."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
        http.get(f"http://127.0.0.1:{port}{path}") as answer,
    ):
        await answer.read()
        return answer.status, answer.headers.get("Connection", "")


async def test_sigterm_turns_not_ready_and_keeps_serving_for_the_shutdown_delay(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env(
        DATABASE_URL=database_url,
        YOUDAI_DATA_DIR=str(tmp_path / "data"),
        YOUDAI_SHUTDOWN_DELAY="3",
    )
    served = Served(env, port, 1)
    try:
        served.wait_serving(1)
        assert (await get_status(port, "/readyz"))[0] == 200
        signalled = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        # Not ready, so load balancers send nothing new; yet what still comes is answered,
        # on connections that close after their answer.
        assert await get_status(port, "/readyz") == (503, "close")
        assert await get_status(port, "/healthz") == (200, "close")
        await asyncio.sleep(2)
        assert (await get_status(port, "/healthz"))[0] == 200, "stopped before the delay"
        assert served.process.poll() is None
        assert await asyncio.to_thread(served.wait_exit) == 0, "".join(served.lines)
        assert time.monotonic() - signalled >= 3
    finally:
        served.kill()
    assert connection_refused(port)


def test_the_shutdown_delay_is_5_seconds_unless_set_and_0_in_development() -> None:
    assert load_settings({}).shutdown_delay_seconds() == 5
    assert load_settings({}).shutdown_delay_seconds(development=True) == 0
    given = load_settings({"YOUDAI_SHUTDOWN_DELAY": "12"})
    assert given.shutdown_delay_seconds(development=True) == 12
    assert load_settings({"YOUDAI_SHUTDOWN_DELAY": "0"}).shutdown_delay_seconds() == 0
