"""Fuzzing over the live OpenAPI document: no generated request may produce a 5xx.

The document is read from the app itself, so every route added later is fuzzed too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import asyncpg
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings

from service.api.docs import build_openapi
from service.app import create_app
from service.config import load_settings
from service.db import keys as keys_db
from service.db.pool import init_connection
from service.domain.auth import Role
from tests.conftest import TestServer, free_port
from tests.helpers import make_partner

schema = schemathesis.openapi.from_dict(
    build_openapi(create_app(load_settings({}), "postgresql://unused@/unused"))
)


class LiveServer:
    def __init__(self, url: str, admin_key: str, database_url: str = "") -> None:
        self.url = url
        self.admin_key = admin_key
        self.database_url = database_url


@pytest.fixture(scope="module")
def live_server(pg_server: TestServer) -> Iterator[LiveServer]:
    database_url = asyncio.run(pg_server.clone())

    async def seed() -> str:
        conn = await asyncpg.connect(database_url)
        await init_connection(conn)
        try:
            await make_partner(conn)
            _, secret = await keys_db.create_key(
                conn, role=Role.ADMIN, partner_id=None, label="fuzz", actor=None
            )
        finally:
            await conn.close()
        return secret

    admin_key = asyncio.run(seed())
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner_box: list[web.AppRunner] = []

    async def run() -> None:
        runner = web.AppRunner(
            create_app(load_settings({"YOUDAI_LOG_LEVEL": "WARNING"}), database_url)
        )
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runner_box.append(runner)
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=30)
    started.wait(30)
    yield LiveServer(f"http://127.0.0.1:{port}", admin_key, database_url)
    asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_generated_request_causes_a_server_error(case, live_server: LiveServer) -> None:
    response = case.call(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {live_server.admin_key}"},
        timeout=10,
    )
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/problem+json"), (case.method, case.path)
