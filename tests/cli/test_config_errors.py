"""Bad configuration stops start-up with one clear line on stderr and exit status 2."""

import subprocess
import sys

import pytest

from tests.conftest import cli_env


def run_youdai(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "args", "mentions"),
    [
        ({"DATABASE_URL": "mysql://root@localhost/youdai"}, ["serve"], "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://localhost:99999/youdai"}, ["serve"], "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://localhost:5432"}, ["migrate"], "DATABASE_URL"),
        ({"YOUDAI_TIMEZONE": "Mars/Olympus_Mons"}, ["serve"], "YOUDAI_TIMEZONE"),
        ({"YOUDAI_PORT": "eighty"}, ["serve"], "YOUDAI_PORT"),
        ({"YOUDAI_PORT": "70000"}, ["serve"], "YOUDAI_PORT"),
        ({"YOUDAI_TOKEN_TTL": "-5"}, ["serve"], "YOUDAI_TOKEN_TTL"),
        ({"YOUDAI_TOKEN_TTL": "5m"}, ["serve"], "YOUDAI_TOKEN_TTL"),
        ({"YOUDAI_LOG_FORMAT": "xml"}, ["serve"], "YOUDAI_LOG_FORMAT"),
        ({"YOUDAI_SHUTDOWN_DELAY": "-1"}, ["serve"], "YOUDAI_SHUTDOWN_DELAY"),
        ({"YOUDAI_SHUTDOWN_DELAY": "5s"}, ["serve"], "YOUDAI_SHUTDOWN_DELAY"),
        ({}, ["serve", "--port", "0"], "--port"),
    ],
)
def test_bad_setting_exits_2_with_one_line_and_no_traceback(env, args, mentions) -> None:
    result = run_youdai(*args, **env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert mentions in lines[0]
    assert "Traceback" not in result.stderr


def test_unreachable_database_exits_2_with_one_line(unused_tcp_port: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/youdai"
    result = run_youdai("migrate", DATABASE_URL=url)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot connect to PostgreSQL" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
