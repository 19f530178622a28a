"""Commands that read (report, reconcile, backup) pointed at the wrong place say so in
one line and create nothing; `youdai restore` ends by saying what the restored service
needs: the key that sealed its signing keys (issue 31)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from service.sealing import generate_secret_key
from tests.conftest import TestServer, cli_env

READ_COMMANDS = [("report",), ("reconcile",), ("backup", "out.dump")]


def youdai(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=cli_env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


async def table_count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda command: command[0])
async def test_a_read_command_on_a_database_without_youdai_says_which_in_one_line(
    pg_server: TestServer, tmp_path: Path, command: tuple[str, ...]
) -> None:
    url = await pg_server.empty_database()
    line = one_line(youdai(*command, cwd=tmp_path, DATABASE_URL=url))
    assert url.rsplit("/", 1)[1] in line and "(DATABASE_URL)" in line, line
    assert "holds no youdai data" in line
    assert await table_count(url) == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda command: command[0])
def test_a_read_command_run_from_the_wrong_folder_creates_no_embedded_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    line = one_line(youdai(*command, cwd=tmp_path))
    assert f"YOUDAI_DATA_DIR={tmp_path / '.youdai'}" in line and "DATABASE_URL unset" in line
    assert list(tmp_path.iterdir()) == [], "a read command created files"


def test_help_names_the_settings_that_choose_the_database() -> None:
    result = youdai("--help")
    assert result.returncode == 0
    assert "DATABASE_URL" in result.stdout and "YOUDAI_DATA_DIR" in result.stdout


@pytest.fixture(scope="module")
def archive_and_key(tmp_path_factory: pytest.TempPathFactory, pg_server: TestServer):
    """A backup of a database whose one signing key is sealed under the returned key."""
    import asyncio

    folder = tmp_path_factory.mktemp("archive")
    url = asyncio.run(pg_server.empty_database())
    key = generate_secret_key()
    made = youdai("rotate-signing-key", DATABASE_URL=url, YOUDAI_SECRET_KEY=key)
    assert made.returncode == 0, made.stderr
    archive = folder / "youdai.dump"
    done = youdai("backup", str(archive), DATABASE_URL=url, YOUDAI_SECRET_KEY="")
    assert done.returncode == 0, done.stderr
    return archive, key


async def test_restore_with_the_right_key_says_what_the_service_needs_and_that_it_opens(
    pg_server: TestServer, archive_and_key: tuple[Path, str]
) -> None:
    archive, key = archive_and_key
    url = await pg_server.empty_database()
    result = youdai("restore", str(archive), DATABASE_URL=url, YOUDAI_SECRET_KEY=key)
    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-2:]
    assert "needs the YOUDAI_SECRET_KEY that sealed its 1 signing key(s)" in last[0]
    assert last[1] == "YOUDAI_SECRET_KEY opens them all"
    assert "warning" not in result.stderr


async def test_restore_with_another_key_warns_before_it_exits(
    pg_server: TestServer, archive_and_key: tuple[Path, str], tmp_path: Path
) -> None:
    archive, _ = archive_and_key
    url = await pg_server.empty_database()
    other = generate_secret_key()
    result = youdai("restore", str(archive), DATABASE_URL=url, YOUDAI_SECRET_KEY=other)
    assert result.returncode == 0, result.stderr
    assert "needs the YOUDAI_SECRET_KEY" in result.stdout.splitlines()[-1]
    warning = result.stderr.strip().splitlines()[-1]
    assert warning.startswith("youdai: warning: 1 of the 1 signing key(s) do not open with")


@pytest.mark.slow
def test_restore_into_a_data_folder_without_the_key_warns(tmp_path: Path) -> None:
    """The issue's case: the embedded service restored without its secret.key would not
    start, and restore used to say nothing."""
    first, second = tmp_path / "first", tmp_path / "second"
    made = youdai("rotate-signing-key", YOUDAI_DATA_DIR=str(first))
    assert made.returncode == 0, made.stderr
    archive = tmp_path / "youdai.dump"
    assert youdai("backup", str(archive), YOUDAI_DATA_DIR=str(first)).returncode == 0
    result = youdai("restore", str(archive), YOUDAI_DATA_DIR=str(second))
    assert result.returncode == 0, result.stderr
    assert "needs the YOUDAI_SECRET_KEY" in result.stdout.splitlines()[-1]
    warning = result.stderr.strip().splitlines()[-1]
    assert warning.startswith("youdai: warning: no key is in reach here"), result.stderr
    assert str(second / "secret.key") in warning
    assert not (second / "secret.key").exists()
