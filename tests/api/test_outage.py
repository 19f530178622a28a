"""PostgreSQL goes away and comes back: the service says 503 `database_unavailable`
at once (no hang), readiness turns 503, and it recovers by itself, without a restart.

The test runs its own embedded server (not the session's shared one) and stops and
starts it under a running app.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import Settings
from service.db import pool as pool_module
from service.db.embedded import EmbeddedPostgres, ensure_database
from service.db.migrate import migrate
from service.db.pool import init_connection
from service.domain.auth import Role
from service.flows import keys as keys_flow
from service.flows.health import DATABASE_DOWN
from service.flows.holder_imports import open_job
from tests.helpers import Till, bearer

pytestmark = pytest.mark.slow

#: How fast a request must answer while the database is down.
QUICK = 3.0
#: How soon the service must be back once the database is.
RECOVERY = 10.0


@pytest.fixture
async def own_postgres() -> AsyncIterator[EmbeddedPostgres]:
    data_dir = Path(tempfile.mkdtemp(prefix="youdai-outage-pg-"))
    embedded = EmbeddedPostgres(data_dir)
    try:
        maintenance_url = await asyncio.to_thread(embedded.start)
        await ensure_database(maintenance_url)
        conn = await asyncpg.connect(embedded.url())
        try:
            await init_connection(conn)
            await migrate(conn)
        finally:
            await conn.close()
        yield embedded
    finally:
        await asyncio.to_thread(embedded.stop)
        shutil.rmtree(data_dir, ignore_errors=True)


async def timed(request) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = await request
    body = await response.json()
    return response.status, body, time.monotonic() - started


async def assert_unavailable(request) -> None:
    status, body, seconds = await timed(request)
    assert status == 503, body
    assert body["code"] == "database_unavailable"
    assert seconds < QUICK, f"took {seconds:.1f} s"


async def test_database_outage_answers_503_quickly_and_recovers_without_restart(
    own_postgres: EmbeddedPostgres, settings: Settings, aiohttp_client
) -> None:
    url = own_postgres.url()
    db = await asyncpg.connect(url)
    await init_connection(db)
    _, secret = await keys_flow.issue(db, role=Role.ADMIN, partner_id=None, label="ops", actor=None)
    admin = bearer(secret)
    till = await Till(db, settings).open()
    _, second_token = await till.new_voucher()
    await db.close()
    client: TestClient = await aiohttp_client(create_app(settings, url))

    def redeem(token: str):
        return client.post(
            "/v1/redemptions",
            json={"token": token, "purchase_amount": 10000},
            headers={**till.scanner, "Idempotency-Key": uuid.uuid4().hex},
        )

    assert (await client.get("/readyz")).status == 200
    assert (await client.get("/v1/partners", headers=admin)).status == 200
    assert (await redeem(till.token)).status == 201

    await asyncio.to_thread(own_postgres.halt)
    try:
        await assert_unavailable(client.get("/readyz"))
        await assert_unavailable(client.get("/v1/partners", headers=admin))
        await assert_unavailable(redeem(second_token))
        response = await client.get("/v1/partners", headers=admin)
        assert response.headers.get("Retry-After")
        assert (await client.get("/healthz")).status == 200  # liveness does not follow it
    finally:
        await asyncio.to_thread(own_postgres.resume)

    deadline = time.monotonic() + RECOVERY
    while (await client.get("/readyz")).status != 200:
        assert time.monotonic() < deadline, "/readyz did not recover"
        await asyncio.sleep(0.2)
    assert (await client.get("/v1/partners", headers=admin)).status == 200
    response = await redeem(second_token)
    assert response.status == 201, await response.text()


def postgres_processes(embedded: EmbeddedPostgres) -> list[psutil.Process]:
    postmaster = psutil.Process(int((embedded.pgdata / "postmaster.pid").read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


async def test_database_that_stops_answering_is_503_within_the_timeouts_not_a_hang(
    own_postgres: EmbeddedPostgres, settings: Settings, aiohttp_client, monkeypatch
) -> None:
    """A frozen server (a network partition: nothing refused, nothing answered) costs each
    request one timeout, here shortened: connecting, waiting for a connection, a query."""
    monkeypatch.setattr(pool_module, "CONNECT_TIMEOUT", 1.0)
    monkeypatch.setattr(pool_module, "COMMAND_TIMEOUT", 1.0)
    monkeypatch.setattr(pool_module, "ACQUIRE_TIMEOUT", 1.5)
    url = own_postgres.url()
    db = await asyncpg.connect(url)
    await init_connection(db)
    _, secret = await keys_flow.issue(db, role=Role.ADMIN, partner_id=None, label="ops", actor=None)
    admin = bearer(secret)
    await db.close()
    small_pool = settings.with_overrides(db_pool_min=1, db_pool_max=2)
    client: TestClient = await aiohttp_client(create_app(small_pool, url))
    assert (await client.get("/v1/partners", headers=admin)).status == 200

    frozen = postgres_processes(own_postgres)
    for process in frozen:
        process.suspend()
    try:
        await assert_unavailable(client.get("/readyz"))
        await assert_unavailable(client.get("/v1/partners", headers=admin))
        # More requests than connections: those queued for one give up in time too.
        await asyncio.gather(
            *(assert_unavailable(client.get("/v1/partners", headers=admin)) for _ in range(6))
        )
    finally:
        for process in frozen:
            process.resume()

    deadline = time.monotonic() + RECOVERY
    while (await client.get("/v1/partners", headers=admin)).status != 200:
        assert time.monotonic() < deadline, "did not recover"
        await asyncio.sleep(0.2)
    assert (await client.get("/readyz")).status == 200


async def test_an_import_that_cannot_reach_the_database_is_database_unavailable(
    unused_tcp_port: int,
) -> None:
    """A holder import's job opens a connection of its own, outside the pool: failing to
    connect is an outage there too (503), not an unexpected error."""
    with pytest.raises(DATABASE_DOWN):
        await open_job(f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/youdai", rows=1)
