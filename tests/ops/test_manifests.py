"""The image run the way deploy/k8s runs it, read from the manifests themselves: the
Deployment's and the migration Job's command, user, read-only root, dropped
capabilities, emptyDir volumes (tmpfs here) and environment (the ConfigMap, and the
Secret with this test's database and key in place of its placeholders), on one
PostgreSQL 15 database.

- two replicas, each with its own /data, both serve, and a rolling update (one new pod
  up before an old one stops, as maxSurge 1 / maxUnavailable 0) keeps one serving
  throughout: every pod opens the signing keys another sealed (issue 31);
- the migration Job as written (no /data at all) exits 0, and a second one at the same
  time is harmless;
- a pod whose Secret lacks YOUDAI_SECRET_KEY is refused with one line, not left to make
  up a key of its own.

The one change to the manifests: pods have a network of their own, these containers
share the host's, so each gets a port of its own (`--port` and YOUDAI_PORT).
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from service.sealing import generate_secret_key
from tests.conftest import free_port
from tests.ops import image
from tests.ops.test_image import PG15, _database, wait_ready

pytestmark = pytest.mark.slow

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
ENTRYPOINT = ["youdai"]


def manifest(kind: str) -> dict:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind:
                return doc
    raise AssertionError(f"no {kind} in deploy/k8s")


def environment(workload: dict, secrets: dict[str, str]) -> dict[str, str]:
    """What the pod's environment holds: envFrom, then env (which wins), as Kubernetes
    does; Secret values are this test's."""
    config = manifest("ConfigMap")
    secret = manifest("Secret")
    assert set(secrets) <= set(secret["stringData"]), "the test sets values the Secret lacks"
    sources = {
        config["metadata"]["name"]: config["data"],
        secret["metadata"]["name"]: {**secret["stringData"], **secrets},
    }
    spec = workload["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        reference = source.get("configMapRef") or source.get("secretRef")
        env.update({k: v for k, v in sources[reference["name"]].items() if v is not None})
    for variable in spec.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
            continue
        reference = variable["valueFrom"].get("secretKeyRef") or variable["valueFrom"].get(
            "configMapKeyRef"
        )
        values = sources[reference["name"]]
        if reference["key"] not in values:
            # Kubernetes does not start such a pod (CreateContainerConfigError).
            raise KeyError(f"{reference['name']} has no {reference['key']}")
        env[variable["name"]] = values[reference["key"]]
    return env


def podman_run(workload: dict, tag: str, env: dict[str, str], port: int | None) -> list[str]:
    """`podman run` arguments for the workload's one container, from its manifest."""
    pod = workload["spec"]["template"]["spec"]
    spec = pod["containers"][0]
    security = {**pod.get("securityContext", {}), **spec.get("securityContext", {})}
    # Kubernetes ignores the image's VOLUME: /data is on the read-only root unless mounted
    # (podman would otherwise give it an anonymous, writable volume).
    arguments = ["--image-volume", "ignore"]
    arguments += ["--user", f"{security['runAsUser']}:{security['runAsGroup']}"]
    if security.get("readOnlyRootFilesystem"):
        arguments.append("--read-only")
    if "ALL" in security.get("capabilities", {}).get("drop", []):
        arguments += ["--cap-drop", "all"]
    if security.get("allowPrivilegeEscalation") is False:
        arguments += ["--security-opt", "no-new-privileges"]
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for mount in spec.get("volumeMounts", []):
        assert "emptyDir" in volumes[mount["name"]], "only emptyDir volumes are modelled"
        arguments += ["--tmpfs", f"{mount['mountPath']}:rw,nosuid,nodev,mode=0700,U"]
    command = list(spec.get("command") or ENTRYPOINT) + list(spec.get("args", []))
    if port is not None:
        command[command.index("--port") + 1] = str(port)
        env = {**env, "YOUDAI_PORT": str(port)}
    for name, value in env.items():
        arguments += ["--env", f"{name}={value}"]
    arguments += ["--network", "host", "--entrypoint", command[0], tag, *command[1:]]
    return arguments


@pytest.fixture
def database() -> Iterator[str]:
    name = f"youdai_manifests_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_database("create", name))
    except OSError as error:
        pytest.skip(f"no PostgreSQL 15 on 127.0.0.1:5432 ({error})")
    yield f"{PG15}/{name}"
    asyncio.run(_database("drop", name))


class Pods:
    """Containers started from one manifest; all removed at the end."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.names: list[str] = []

    def start(self, workload: dict, env: dict[str, str], port: int | None = None) -> str:
        name = f"youdai-manifest-{uuid.uuid4().hex[:8]}"
        image.podman("run", "--detach", "--name", name, *podman_run(workload, self.tag, env, port))
        self.names.append(name)
        return name

    def wait_exit(self, name: str, timeout: float = 120) -> tuple[int, str]:
        done = image.podman("wait", name, timeout=timeout)
        logs = image.podman("logs", name, check=False)
        return int(done.stdout.strip().splitlines()[-1]), logs.stdout + logs.stderr

    def remove_all(self) -> None:
        for name in self.names:
            image.podman("rm", "--force", "--time", "0", name, check=False)


@pytest.fixture
def pods(built: str) -> Iterator[Pods]:
    started = Pods(built)
    yield started
    started.remove_all()


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
            return answer.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def create_signing_key(port: int) -> None:
    """The JWKS makes the first signing key, sealed with the pod's secret key."""
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/.well-known/jwks.json", timeout=5
    ) as answer:
        assert answer.status == 200


class Watch:
    """Asks every live replica's /readyz every 100 ms; notes each moment none answered."""

    def __init__(self) -> None:
        self.ports: set[int] = set()
        self.gaps: list[float] = []
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            ports = sorted(self.ports)
            if ports:  # from the first replica's readiness on
                if not any(ready(port) for port in ports):
                    self.gaps.append(time.monotonic())
                self.rounds += 1
            time.sleep(0.1)


@pytest.mark.parametrize("secret_key", [True, False], ids=["with-key", "no-key"])
def test_migration_job_as_written_exits_0_twice_at_once_without_a_data_folder(
    pods: Pods, database: str, secret_key: bool
) -> None:
    """Migrating needs no key-encryption key: without one it must not try to make one in a
    /data that is not there (the image's own /data is on the read-only root)."""
    job = manifest("Job")
    mounts = [
        m["mountPath"]
        for m in job["spec"]["template"]["spec"]["containers"][0].get("volumeMounts", [])
    ]
    assert "/data" not in mounts, "the Job is meant to run without a data folder"
    env = environment(job, {"DATABASE_URL": database, "YOUDAI_SECRET_KEY": generate_secret_key()})
    if not secret_key:
        del env["YOUDAI_SECRET_KEY"]
    names = [pods.start(job, env) for _ in range(2)]
    results = [pods.wait_exit(name) for name in names]
    for code, logs in results:
        assert code == 0, logs
        assert "Traceback" not in logs and "Read-only file system" not in logs, logs
    applied = sorted(logs.split("applied ")[1].split()[0] for _, logs in results)
    assert applied[0] == "0" and int(applied[1]) > 0, [logs for _, logs in results]


def test_two_replicas_with_their_own_data_serve_and_a_rolling_update_keeps_one_serving(
    pods: Pods, database: str
) -> None:
    deployment = manifest("Deployment")
    env = environment(
        deployment, {"DATABASE_URL": database, "YOUDAI_SECRET_KEY": generate_secret_key()}
    )
    ports = {}
    with Watch() as watch:
        for replica in ("a", "b"):
            port = free_port()
            ports[replica] = (pods.start(deployment, env, port), port)
            wait_ready(port, ports[replica][0])
            watch.ports.add(port)
            if replica == "a":
                create_signing_key(port)  # the key every later pod must open
        # The rollout: a new pod ready before an old one gets SIGTERM, one at a time.
        for old in ("a", "b"):
            port = free_port()
            name = pods.start(deployment, env, port)
            wait_ready(port, name)
            create_signing_key(port)
            watch.ports.add(port)
            old_name, old_port = ports.pop(old)
            watch.ports.discard(old_port)
            image.podman("stop", "--time", "30", old_name, timeout=60)
            ports[old + "2"] = (name, port)
        time.sleep(1)
    assert watch.rounds > 20
    assert watch.gaps == [], f"{len(watch.gaps)} moment(s) with no replica ready"
    for name, port in ports.values():
        assert ready(port), name
        logs = image.podman("logs", name).stderr
        assert "Pillow" not in logs, "a line at every start about a library youdai never uses"
    print(f"{watch.rounds} readiness rounds over the rollout, none without a ready replica")


def test_a_pod_without_the_secret_key_stops_with_one_line(pods: Pods, database: str) -> None:
    deployment = manifest("Deployment")
    env = environment(
        deployment, {"DATABASE_URL": database, "YOUDAI_SECRET_KEY": generate_secret_key()}
    )
    del env["YOUDAI_SECRET_KEY"]  # a Secret without it, were it optional
    name = pods.start(deployment, env, free_port())
    code, logs = pods.wait_exit(name, timeout=60)
    assert code == 2, logs
    lines = [line for line in logs.splitlines() if line.startswith("youdai: ")]
    assert len(lines) == 1 and lines[0].startswith("youdai: error: set YOUDAI_SECRET_KEY"), logs
    assert "Traceback" not in logs
