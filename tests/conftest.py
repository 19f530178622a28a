"""Test databases on a real PostgreSQL.

The session starts the embedded server (or uses the server in
YOUDAI_TEST_DATABASE_URL / DATABASE_URL, given as a URL of its maintenance database),
migrates one template database, and gives every test its own copy of it, cloned
with CREATE DATABASE … TEMPLATE (fast: a file copy). Everything is dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import Settings, load_settings
from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate
from service.db.pool import init_connection
from service.domain.auth import Role
from service.flows import keys as keys_flow
from service.sealing import generate_secret_key
from tests.conformance import Conformance
from tests.helpers import bearer

ROOT = Path(__file__).resolve().parent.parent
#: The YOUDAI_SECRET_KEY of this test run: the `settings` fixture's, and what `cli_env`
#: gives a command run with DATABASE_URL, as production gives both (deploy/k8s).
TEST_SECRET_KEY = generate_secret_key()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class TestServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    __test__ = False

    def __init__(self, maintenance_url: str) -> None:
        self.maintenance_url = maintenance_url
        self.template = f"youdai_tpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.maintenance_url)

    async def prepare_template(self) -> None:
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await conn.close()
        db = await asyncpg.connect(with_database(self.maintenance_url, self.template))
        try:
            await init_connection(db)
            await migrate(db)
        finally:
            await db.close()

    async def clone(self) -> str:
        name = f"youdai_test_{uuid.uuid4().hex[:12]}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            # Test data is thrown away: commits need not wait for the disk.
            await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        finally:
            await conn.close()
        self.created.append(name)
        return with_database(self.maintenance_url, name)

    async def empty_database(self) -> str:
        """A database with no schema at all (for migration tests)."""
        name = f"youdai_test_{uuid.uuid4().hex[:12]}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        return with_database(self.maintenance_url, name)

    async def drop(self, name: str) -> None:
        conn = await self._admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def drop_all(self) -> None:
        for name in [*self.created, self.template]:
            await self.drop(name)
        self.created.clear()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TestServer]:
    given = os.environ.get("YOUDAI_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    embedded = None
    data_dir = None
    if given:
        maintenance_url = given
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="youdai-test-pg-"))
        embedded = EmbeddedPostgres(data_dir)
        embedded.start()
        maintenance_url = embedded.url("postgres")
        asyncio.run(_throwaway_durability(maintenance_url))
    server = TestServer(maintenance_url)
    asyncio.run(server.prepare_template())
    try:
        yield server
    finally:
        asyncio.run(server.drop_all())
        if embedded is not None:
            embedded.stop()
            shutil.rmtree(data_dir, ignore_errors=True)


async def _throwaway_durability(maintenance_url: str) -> None:
    """The embedded test server's data is thrown away: skip fsync (creating and dropping
    databases then costs milliseconds instead of a checkpoint each)."""
    conn = await asyncpg.connect(maintenance_url)
    try:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            await conn.execute(f"ALTER SYSTEM SET {setting} = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def shared_database_url(pg_server: TestServer) -> str:
    return asyncio.run(pg_server.clone())


@pytest.fixture
async def database_url(shared_database_url: str) -> str:
    """The session's test database, emptied before each test: every test starts from
    a freshly migrated state and never sees another's rows."""
    conn = await asyncpg.connect(shared_database_url)
    try:
        # A test that failed half-way may have left a connection open, holding a lock
        # (tests/cli/test_shutdown.py locks a table): end it, so that its failure stays
        # its own instead of every later test waiting out its timeout on the DELETE.
        await conn.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        )
        # DELETE, not TRUNCATE: a few rows go faster than new files for every table.
        # The replica role skips triggers (the ledger refuses deletes) and FK order.
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("; ".join(f"DELETE FROM {t['name']}" for t in tables))
    finally:
        await conn.close()
    return shared_database_url


@pytest.fixture
async def own_database_url(pg_server: TestServer) -> AsyncIterator[str]:
    """A database of the test's own, for tests that change the schema itself."""
    url = await pg_server.clone()
    yield url
    await pg_server.drop(urlsplit(url).path.lstrip("/"))


@pytest.fixture
def settings() -> Settings:
    return load_settings(
        {
            "YOUDAI_LOG_FORMAT": "json",
            "YOUDAI_DB_POOL_MAX": "20",
            "YOUDAI_SECRET_KEY": TEST_SECRET_KEY,
        }
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test database, for arranging and checking rows."""
    conn = await asyncpg.connect(database_url)
    await init_connection(conn)
    yield conn
    await conn.close()


@pytest.fixture
def aiohttp_client(aiohttp_client, request):  # type: ignore[no-untyped-def]
    """pytest-aiohttp's, with every answer checked against the OpenAPI document
    (tests/conformance.py): a test fails when the service says what its document
    does not."""
    conformance = Conformance()

    async def start(app, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(app, web.Application):
            conformance.install(app)
        return await aiohttp_client(app, *args, **kwargs)

    yield start
    if conformance.violations and "no_conformance" not in request.keywords:
        pytest.fail(
            "answers that the OpenAPI document does not describe:\n"
            + "\n".join(sorted(set(conformance.violations))),
            pytrace=False,
        )


@pytest.fixture
async def client(database_url: str, settings: Settings, aiohttp_client) -> TestClient:
    return await aiohttp_client(create_app(settings, database_url))


@pytest.fixture
async def admin_key(db: asyncpg.Connection) -> str:
    _, secret = await keys_flow.issue(
        db, role=Role.ADMIN, partner_id=None, label="test admin", actor=None
    )
    return secret


@pytest.fixture
def admin(admin_key: str) -> dict[str, str]:
    """Headers of an admin caller."""
    return bearer(admin_key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for running the `youdai` command in a subprocess. With DATABASE_URL it
    also has the run's YOUDAI_SECRET_KEY unless one is given (`""` for none)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("YOUDAI_") and key != "DATABASE_URL"
    }
    env["YOUDAI_LOG_FORMAT"] = "json"
    if extra.get("DATABASE_URL"):
        env["YOUDAI_SECRET_KEY"] = TEST_SECRET_KEY
    # Development: nothing routes traffic to these servers, so SIGTERM need not wait.
    env["YOUDAI_SHUTDOWN_DELAY"] = "0"
    env.update(extra)
    return env
