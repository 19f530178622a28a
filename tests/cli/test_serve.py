"""`youdai serve`: embedded PostgreSQL by default, DATABASE_URL when given."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import cli_env, free_port

pytestmark = pytest.mark.slow


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"youdai serve exited: {process.communicate()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError("youdai serve did not become ready")


def get(port: int, path: str, key: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def start(env: dict[str, str], port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 0


def postmaster_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def create_admin_key(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "service", "create-key", "--role", "admin", "--label", "ops"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_serve_without_database_url_runs_embedded_postgres_and_reuses_its_data(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(YOUDAI_DATA_DIR=str(data_dir))
    key = create_admin_key(env)
    assert key.startswith("yd_")
    port = free_port()

    first = start(env, port)
    try:
        wait_ready(port, first)
        assert (data_dir / "pgdata" / "PG_VERSION").exists()
        status, _ = get(port, "/v1/partners", key)
        assert status == 200
    finally:
        stop(first)
    assert not postmaster_running(data_dir / "pgdata"), "embedded server outlived the service"

    second = start(env, port)
    try:
        wait_ready(port, second)
        status, _ = get(port, "/v1/partners", key)  # the key made before still works
        assert status == 200
    finally:
        stop(second)
    assert not postmaster_running(data_dir / "pgdata")


async def test_serve_with_database_url_uses_it_and_starts_nothing(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(YOUDAI_DATA_DIR=str(data_dir), DATABASE_URL=database_url)
    port = free_port()
    process = start(env, port)
    try:
        wait_ready(port, process)
        key = create_admin_key(env)
        assert get(port, "/v1/partners", key)[0] == 200
    finally:
        stop(process)
    assert not (data_dir / "pgdata").exists()
