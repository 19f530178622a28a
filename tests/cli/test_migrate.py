"""`youdai migrate`: ordered, recorded, once each, safe to run from many processes at once."""

import subprocess
import sys

import asyncpg

from service.db.migrate import available_migrations
from tests.conftest import TestServer, cli_env


async def test_five_concurrent_migrate_processes_apply_each_migration_exactly_once(
    pg_server: TestServer,
) -> None:
    url = await pg_server.empty_database()
    env = cli_env(DATABASE_URL=url)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "service", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 5, outputs
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [(r["version"], r["name"]) for r in rows] == [
        (m.version, m.name) for m in available_migrations()
    ]
    applied_counts = sorted(out.split()[1] for out, _ in outputs)
    assert applied_counts.count("0") == 4  # the other four found nothing left to do


async def test_migrate_again_applies_nothing(pg_server: TestServer) -> None:
    url = await pg_server.empty_database()
    env = cli_env(DATABASE_URL=url)
    first = subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    second = subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert first.returncode == second.returncode == 0
    assert second.stdout.startswith("applied 0 migration(s)")


def test_migration_files_are_numbered_without_gaps() -> None:
    versions = [m.version for m in available_migrations()]
    assert versions == list(range(1, len(versions) + 1))
