"""`youdai backup FILE` / `youdai restore FILE` (docs/running.md): one consistent snapshot, taken
while tills redeem, restored only into an empty database, on DATABASE_URL and on the
embedded server with the wheel's own pg_dump and pg_restore."""

from __future__ import annotations

import asyncio
import re
import socket
import stat
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import load_settings
from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate
from service.db.pool import init_connection
from tests.conftest import TestServer, cli_env
from tests.helpers import Till, record_redemption, record_reversal


def youdai(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def redemption_ids(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        return {row["id"] for row in await conn.fetch("SELECT id FROM redemptions")}
    finally:
        await conn.close()


async def test_backup_during_a_redemption_burst_restores_every_answered_redemption(
    database_url: str, db: asyncpg.Connection, settings, aiohttp_client, pg_server: TestServer,
    tmp_path: Path,
) -> None:  # fmt: skip
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 100, "uses_per_voucher": 10_000}
    )
    tokens = [till.token] + [(await till.new_voucher())[1] for _ in range(5)]
    servers: list[TestClient] = [
        await aiohttp_client(create_app(settings, database_url)) for _ in range(2)
    ]
    answered: list[tuple[float, str]] = []  # (when the 201 arrived, redemption id)
    stop = asyncio.Event()

    async def scanner(index: int) -> None:
        while not stop.is_set():
            response = await servers[index % 2].post(
                "/v1/redemptions",
                json={"token": tokens[index % len(tokens)], "purchase_amount": 1000},
                headers={**till.scanner, "Idempotency-Key": uuid.uuid4().hex},
            )
            assert response.status == 201, await response.text()
            answered.append((time.monotonic(), (await response.json())["id"]))

    workers = [asyncio.create_task(scanner(i)) for i in range(8)]
    await asyncio.sleep(0.5)
    archive = tmp_path / "youdai.backup"
    began = time.monotonic()
    run = await asyncio.to_thread(youdai, "backup", str(archive), DATABASE_URL=database_url)
    ended = time.monotonic()
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*workers)

    assert run.returncode == 0, run.stderr
    before = {rid for at, rid in answered if at < began}
    during = [rid for at, rid in answered if began <= at <= ended]
    assert before, "no redemption was answered before the backup began"
    assert during, "no redemption ran during the backup: the test proved nothing"
    assert f"wrote {archive}" in run.stdout

    empty = await pg_server.empty_database()
    restored = youdai("restore", str(archive), DATABASE_URL=empty)
    assert restored.returncode == 0, restored.stderr
    in_backup = await redemption_ids(empty)
    assert before <= in_backup
    assert f"{len(in_backup)} redemption(s)" in run.stdout, "the summary counts the snapshot"
    reconcile = youdai("reconcile", DATABASE_URL=empty)
    assert reconcile.returncode == 0, reconcile.stdout


async def test_backup_file_is_readable_by_its_owner_only(database_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "youdai.backup"
    run = youdai("backup", str(archive), DATABASE_URL=database_url)
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert archive.read_bytes().startswith(b"PGDMP")
    assert not list(tmp_path.glob(".*partial")), "the temporary file is gone"


async def test_restore_refuses_a_database_that_is_not_empty(
    database_url: str, db: asyncpg.Connection, settings, tmp_path: Path
) -> None:
    await Till(db, settings).open()
    archive = tmp_path / "youdai.backup"
    assert youdai("backup", str(archive), DATABASE_URL=database_url).returncode == 0
    partners = await db.fetchval("SELECT count(*) FROM partners")

    run = youdai("restore", str(archive), DATABASE_URL=database_url)

    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "not empty" in run.stderr
    assert await db.fetchval("SELECT count(*) FROM partners") == partners


async def test_restore_of_a_damaged_archive_loads_nothing(
    database_url: str, db: asyncpg.Connection, settings, pg_server: TestServer, tmp_path: Path
) -> None:
    await Till(db, settings).open()
    archive = tmp_path / "youdai.backup"
    assert youdai("backup", str(archive), DATABASE_URL=database_url).returncode == 0
    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello")
    empty = await pg_server.empty_database()

    for path in (damaged, not_a_backup):
        run = youdai("restore", str(path), DATABASE_URL=empty)
        assert run.returncode == 2, run.stderr
        assert run.stderr.count("\n") == 1, run.stderr

    conn = await asyncpg.connect(empty)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        )
    finally:
        await conn.close()


@pytest.mark.slow
async def test_embedded_backup_restores_into_a_new_data_folder_and_onto_a_server(
    tmp_path: Path, pg_server: TestServer
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    created = youdai("create-key", "--role", "admin", YOUDAI_DATA_DIR=str(first))
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.splitlines()[-2].split()[-1]
    archive = tmp_path / "youdai.backup"

    run = youdai("backup", str(archive), YOUDAI_DATA_DIR=str(first))
    assert run.returncode == 0, run.stderr

    restored = youdai("restore", str(archive), YOUDAI_DATA_DIR=str(second))
    assert restored.returncode == 0, restored.stderr
    again = youdai("restore", str(archive), YOUDAI_DATA_DIR=str(second))
    assert again.returncode == 2 and "not empty" in again.stderr
    # A bureau outgrowing the embedded default moves onto a server of its own.
    server = await pg_server.empty_database()
    moved = youdai("restore", str(archive), DATABASE_URL=server)
    assert moved.returncode == 0, moved.stderr

    conn = await asyncpg.connect(server)
    try:
        assert await conn.fetchval("SELECT count(*) FROM api_keys WHERE id = $1", key_id) == 1
    finally:
        await conn.close()
    reconcile = youdai("reconcile", YOUDAI_DATA_DIR=str(second))
    assert reconcile.returncode == 0, reconcile.stdout


#: The PostgreSQL 15 server CI runs beside the embedded one (.ci/run).
POSTGRESQL_15 = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgresql_15_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        return False
    return True


async def every_row(url: str) -> dict[str, list[str]]:
    """Each table's rows as text, sorted: what two databases must agree on."""
    conn = await asyncpg.connect(url, server_settings={"timezone": "UTC"})
    try:
        tables = [
            row["tablename"]
            for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            table: await conn.fetchval(
                f'SELECT array_agg(t::text ORDER BY t::text) FROM "{table}" t'
            )
            or []
            for table in tables
        }
    finally:
        await conn.close()


async def server_major(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()


@pytest.mark.slow
@pytest.mark.skipif(
    not postgresql_15_answers(), reason="no PostgreSQL server answers on 127.0.0.1:5432"
)
async def test_backups_cross_between_postgresql_15_and_the_embedded_server_both_ways(
    tmp_path: Path,
) -> None:
    server = TestServer(POSTGRESQL_15)
    try:
        source = await server.empty_database()
        db = await asyncpg.connect(source)
        await init_connection(db)
        await migrate(db)
        settings = load_settings({})
        till = await Till(db, settings).open(offer={"kind": "amount_off", "amount_off": 100})
        redemption = await record_redemption(
            db, settings, till.voucher_id, at=datetime.now(UTC), discount_amount=100
        )
        await record_reversal(db, settings, redemption, at=datetime.now(UTC))
        await db.close()
        rows = await every_row(source)
        assert rows["redemptions"] and rows["reversals"] and rows["signing_keys"]

        # PostgreSQL 15 → the embedded server (PostgreSQL 18)
        from_15 = tmp_path / "from-15.backup"
        run = youdai("backup", str(from_15), DATABASE_URL=source)
        assert run.returncode == 0, run.stderr
        data = tmp_path / "embedded"
        restored = youdai("restore", str(from_15), YOUDAI_DATA_DIR=str(data))
        assert restored.returncode == 0, restored.stderr
        embedded = EmbeddedPostgres(data)
        await asyncio.to_thread(embedded.start)
        try:
            assert await server_major(embedded.url()) > await server_major(source)
            assert await every_row(embedded.url()) == rows
        finally:
            await asyncio.to_thread(embedded.stop)

        # … and back: the embedded server → PostgreSQL 15
        from_18 = tmp_path / "from-18.backup"
        run = youdai("backup", str(from_18), YOUDAI_DATA_DIR=str(data))
        assert run.returncode == 0, run.stderr
        target = await server.empty_database()
        restored = youdai("restore", str(from_18), DATABASE_URL=target)
        assert restored.returncode == 0, restored.stderr
        assert await every_row(target) == rows
        reconcile = youdai("reconcile", DATABASE_URL=target)
        assert reconcile.returncode == 0, reconcile.stdout
    finally:
        await server.drop_all()


def test_migrations_set_no_column_options_which_restore_leaves_out() -> None:
    """service/backup.restore drops per-column options from an archive as the dumped
    server's own: that is only right while youdai's schema sets none."""
    migrations = Path(__file__).resolve().parents[2] / "service/db/migrations"
    pattern = re.compile(r"ALTER\s+COLUMN\s+\S+\s+SET\s*\(", re.IGNORECASE)
    offending = [path.name for path in migrations.glob("*.sql") if pattern.search(path.read_text())]
    assert offending == []
