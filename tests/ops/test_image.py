"""deploy/Dockerfile built and run with podman, hardened as production runs it: read-only
root, tmpfs /data and /tmp, every capability dropped. It answers /readyz on PostgreSQL 15
and on its embedded database, runs as a non-root user, passes its own HEALTHCHECK and
stops within 10 s of SIGTERM.

Without podman these tests skip, saying why; YOUDAI_REQUIRE_OPS_TOOLS=1 (.ci/run
sets it after installing podman) turns that skip into a failure.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from service.sealing import generate_secret_key
from tests.conftest import free_port
from tests.ops import image

pytestmark = pytest.mark.slow

PG15 = "postgresql://postgres@127.0.0.1:5432"
IMAGE_USER = "10001:10001"
#: Only the embedded PostgreSQL writes /data; the image's user must own it.
HARDENED = [
    "--read-only",
    "--tmpfs",
    "/data:rw,nosuid,nodev,mode=0700,U",
    "--tmpfs",
    "/tmp:rw,nosuid,nodev",
    "--cap-drop",
    "all",
    "--security-opt",
    "no-new-privileges",
    "--network",
    "host",
]


def wait_ready(port: int, name: str, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        state = image.podman("inspect", name, "--format", "{{.State.Running}}", check=False)
        if state.stdout.strip() == "false":
            logs = image.podman("logs", name, check=False)
            raise AssertionError(
                f"the container exited: {logs.stdout[-3000:]}{logs.stderr[-3000:]}"
            )
        time.sleep(0.2)
    raise AssertionError(f"/readyz did not answer 200 within {timeout} s")


async def _database(action: str, name: str) -> None:
    conn = await asyncpg.connect(f"{PG15}/postgres", timeout=5)
    try:
        if action == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["postgresql-15", "embedded"])
def environment(request) -> Iterator[list[str]]:
    if request.param == "embedded":
        yield []
        return
    name = f"youdai_image_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_database("create", name))
    except (OSError, asyncpg.PostgresError) as error:
        pytest.skip(f"no PostgreSQL 15 on 127.0.0.1:5432 ({error})")
    # Production gives both (deploy/k8s/secret.yaml): a key is never made up per container.
    yield [
        "--env",
        f"DATABASE_URL={PG15}/{name}",
        "--env",
        f"YOUDAI_SECRET_KEY={generate_secret_key()}",
    ]
    asyncio.run(_database("drop", name))


def test_image_is_docker_format_with_a_healthcheck_and_a_non_root_user(built: str) -> None:
    inspected = json.loads(image.podman("image", "inspect", built).stdout)[0]
    assert inspected["Config"]["User"] == IMAGE_USER
    assert inspected["Healthcheck"]["Test"][0] == "CMD", "the OCI format drops HEALTHCHECK"


def test_hardened_container_is_ready_healthy_non_root_and_stops_on_sigterm(
    built: str, environment: list[str]
) -> None:
    port = free_port()
    name = f"youdai-test-{uuid.uuid4().hex[:8]}"
    image.podman(
        "run", "--detach", "--name", name, *HARDENED, *environment,
        "--env", f"YOUDAI_PORT={port}", built, "serve", "--host", "127.0.0.1",
    )  # fmt: skip
    try:
        wait_ready(port, name)

        health = image.podman("healthcheck", "run", name, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        users = image.podman("top", name, "user", "huser").stdout.split()[2:]
        assert users and all(user in ("youdai", "10001") for user in users), users
        readonly = image.podman("exec", name, "touch", "/opt/venv/written", check=False)
        assert readonly.returncode != 0 and "Read-only" in readonly.stderr
        capabilities = image.podman("exec", name, "grep", "CapEff", "/proc/1/status").stdout
        assert capabilities.split()[-1] == "0000000000000000"

        started = time.monotonic()
        image.podman("stop", "--time", "10", name, timeout=30)
        stopped_in = time.monotonic() - started
        state = json.loads(image.podman("inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 0, "it was killed, not stopped by SIGTERM"
        assert stopped_in < 10
    finally:
        image.podman("rm", "--force", "--time", "0", name, check=False)
