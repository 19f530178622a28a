"""docs/api.md across a crash: SIGKILL the server in the middle of a holder import.

The job ends `failed` (seen from the restarted server), no holder of its file exists,
no hashing process outlives the server, and the same file imports fine afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from bench._common import descendants
from service.domain.holder_imports import CUT_SHORT
from tests.api.test_holder_import import HeldWrite, csv_file
from tests.cli.test_serve import wait_ready
from tests.concurrency.test_crash import start_server
from tests.conftest import free_port
from tests.helpers import make_holder

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def job(http: aiohttp.ClientSession, port: int, admin: dict, job_id: str) -> dict:
    async with http.get(f"http://127.0.0.1:{port}/v1/holder-imports/{job_id}", headers=admin) as r:
        assert r.status == 200, await r.text()
        return await r.json()


@pytest.mark.parametrize("moment", ["while-hashing", "at-the-write"])
async def test_sigkill_mid_import_ends_the_job_failed_with_nothing_written(
    moment: str, database_url: str, db: asyncpg.Connection, admin: dict
) -> None:
    await make_holder(db, card_number="YD-00000001", display_name="旧名", pin="204816")
    before = await db.fetch("SELECT * FROM holders")
    rows = 3000 if moment == "while-hashing" else 40
    lines = [f"YD-{n:08d},veteran,持证人{n},,2030-12-31,{n:06d}" for n in range(1, rows + 1)]
    data = csv_file(*lines)
    ports = [free_port(), free_port()]
    first = start_server(database_url, ports[0])
    second = None
    try:
        await asyncio.to_thread(wait_ready, ports[0], first)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            holding = contextlib.AsyncExitStack()
            if moment == "at-the-write":
                held = await holding.enter_async_context(HeldWrite(database_url))
            async with http.post(
                f"http://127.0.0.1:{ports[0]}/v1/holders/import",
                data=data,
                headers={**admin, "Content-Type": "text/csv"},
            ) as response:
                assert response.status == 202, await response.text()
                job_id = (await response.json())["id"]
            if moment == "at-the-write":
                waiting = await held.job_waiting()
                assert waiting["done"] == rows
            else:
                deadline = time.monotonic() + 120
                while (seen := await job(http, ports[0], admin, job_id))["done"] == 0:
                    assert time.monotonic() < deadline, "no progress"
                    await asyncio.sleep(0.1)
                assert seen["status"] == "running" and seen["done"] < rows, seen
            below = descendants(first.pid)
            if moment == "while-hashing":
                assert below, "no hashing processes"
            first.send_signal(signal.SIGKILL)  # no shutdown, no cleanup: a crash
            first.wait()
            await holding.aclose()  # the job's write may go on now, if it still can

            second = start_server(database_url, ports[1])
            await asyncio.to_thread(wait_ready, ports[1], second)
            deadline = time.monotonic() + 30
            while (after := await job(http, ports[1], admin, job_id))["status"] == "running":
                assert time.monotonic() < deadline, "the cut-short job never ended"
                await asyncio.sleep(0.2)
            assert (after["status"], after["detail"]) == ("failed", CUT_SHORT)
            assert after["finished_at"] is not None
            assert await db.fetch("SELECT * FROM holders") == before
            assert not await db.fetchval(
                "SELECT count(*) FROM audit_events WHERE action = 'holder.import'"
            )
            deadline = time.monotonic() + 10
            while survivors := {pid for pid in below if alive(pid)}:
                assert time.monotonic() < deadline, f"processes outlived the server: {survivors}"
                await asyncio.sleep(0.1)

            # The lock went with the dead job: the same file imports on the new server.
            small = csv_file(*lines[:5])
            async with http.post(
                f"http://127.0.0.1:{ports[1]}/v1/holders/import",
                data=small,
                headers={**admin, "Content-Type": "text/csv"},
            ) as response:
                assert response.status == 202, await response.text()
                again = (await response.json())["id"]
            deadline = time.monotonic() + 60
            while (done := await job(http, ports[1], admin, again))["status"] == "running":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            assert (done["status"], done["created"], done["updated"]) == ("completed", 4, 1)
    finally:
        for server in (first, second):
            if server is not None and server.poll() is None:
                server.kill()
                server.wait()
