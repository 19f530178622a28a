"""Rule 3 across a crash: SIGKILL a server in the middle of a burst of redemptions.

Every redemption a client got a 201 for is in the database afterwards, every counter
equals its ledger rows, and a request whose answer was lost replays or runs exactly
once when retried with its Idempotency-Key.
"""

import asyncio
import signal
import subprocess
import sys
import uuid

import aiohttp
import asyncpg
import pytest

from tests.cli.test_serve import wait_ready
from tests.concurrency.conftest import assert_counters_match_ledger
from tests.conftest import cli_env, free_port
from tests.helpers import Till

pytestmark = pytest.mark.slow


def start_server(database_url: str, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=cli_env(DATABASE_URL=database_url, YOUDAI_LOG_LEVEL="WARNING"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_sigkill_mid_burst_loses_nothing_that_was_answered(
    database_url: str, db: asyncpg.Connection, settings
) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 100, "uses_per_voucher": 10_000}
    )
    tokens = [till.token] + [(await till.new_voucher())[1] for _ in range(7)]
    ports = [free_port(), free_port()]
    servers = [start_server(database_url, port) for port in ports]
    for server, port in zip(servers, ports, strict=True):
        await asyncio.to_thread(wait_ready, port, server)

    answered: dict[str, str] = {}  # Idempotency-Key -> redemption id (got a 201)
    lost: dict[str, dict] = {}  # Idempotency-Key -> body whose answer never came
    stop = asyncio.Event()

    async def scanner(index: int, session: aiohttp.ClientSession) -> None:
        port = ports[index % 2]
        while not stop.is_set():
            key = uuid.uuid4().hex
            body = {"token": tokens[index % len(tokens)], "purchase_amount": 1000}
            try:
                async with session.post(
                    f"http://127.0.0.1:{port}/v1/redemptions",
                    json=body,
                    headers={**till.scanner, "Idempotency-Key": key},
                ) as response:
                    assert response.status < 500, await response.text()
                    if response.status == 201:
                        answered[key] = (await response.json())["id"]
            except (TimeoutError, aiohttp.ClientError):
                lost[key] = body
                await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        workers = [asyncio.create_task(scanner(i, session)) for i in range(16)]
        await asyncio.sleep(1.5)
        servers[0].send_signal(signal.SIGKILL)  # no shutdown, no cleanup: a crash
        servers[0].wait()
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*workers)
    try:
        assert answered, "the burst produced no redemptions"
        assert lost, "the crash interrupted no request; the test proved nothing"

        stored = {row["id"] for row in await db.fetch("SELECT id FROM redemptions")}
        assert set(answered.values()) <= stored
        await assert_counters_match_ledger(db)

        # The crashed server comes back; the lost requests are retried with their keys.
        servers[0] = start_server(database_url, ports[0])
        await asyncio.to_thread(wait_ready, ports[0], servers[0])
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for key, body in lost.items():
                async with session.post(
                    f"http://127.0.0.1:{ports[0]}/v1/redemptions",
                    json=body,
                    headers={**till.scanner, "Idempotency-Key": key},
                ) as response:
                    assert response.status == 201, await response.text()
                    answered[key] = (await response.json())["id"]
        stored = {row["id"] for row in await db.fetch("SELECT id FROM redemptions")}
        assert stored == set(answered.values())  # one redemption per key, none extra
        await assert_counters_match_ledger(db)
    finally:
        for server in servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                await asyncio.to_thread(server.wait, 30)
