"""deploy/ stays true to the code: every manifest parses, probes hit real routes, and
every environment variable it sets is one the service reads and CONFIG.md documents."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from service.app import create_app
from service.config import ENVIRONMENT_VARIABLES, load_settings, validate_database_url
from service.server import SHUTDOWN_GRACE

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
K8S_FILES = sorted(K8S.glob("*.yaml"))
#: Variables the image sets for Python itself rather than for youdai.
RUNTIME_VARIABLES = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
#: Compose services that run the youdai image (the others are third-party images).
YOUDAI_SERVICES = ("migrate", "youdai")


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest(kind: str) -> dict:
    found = [doc for path in K8S_FILES for doc in documents(path) if doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/k8s, found {len(found)}"
    return found[0]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def only(instructions: list[tuple[str, str]], keyword: str) -> str:
    found = [arguments for name, arguments in instructions if name == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


def image_entrypoint() -> list[str]:
    return json.loads(only(final_stage(), "ENTRYPOINT"))


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict) -> dict:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    return containers[0]


def container_argv(spec: dict) -> list[str]:
    """What a Kubernetes container runs: its command, else the image's entry point, + args."""
    return list(spec.get("command") or image_entrypoint()) + list(spec.get("args", []))


@pytest.fixture(scope="module")
def get_routes() -> set[str]:
    app = create_app(load_settings({}), "postgresql://x@/y")
    return {route.resource.canonical for route in app.router.routes() if route.method == "GET"}


def test_every_yaml_file_under_deploy_parses() -> None:
    paths = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    names = {path.relative_to(DEPLOY).as_posix() for path in paths}
    expected = {"compose.yaml"} | {
        f"k8s/{name}.yaml"
        for name in ("configmap", "secret", "deployment", "service", "migrate-job", "pdb", "hpa")
    }
    assert expected <= names
    for path in paths:
        assert documents(path), f"{path} holds no YAML document"


@pytest.mark.parametrize("path", K8S_FILES, ids=lambda path: path.name)
def test_every_kubernetes_manifest_has_api_version_kind_and_name(path: Path) -> None:
    for doc in documents(path):
        assert doc.get("apiVersion"), f"{path.name}: no apiVersion"
        assert doc.get("kind"), f"{path.name}: no kind"
        assert doc.get("metadata", {}).get("name"), f"{path.name}: no metadata.name"
        assert "namespace" not in doc["metadata"], f"{path.name}: manifests are namespace-agnostic"


def test_deployment_probes_point_at_get_routes_of_the_app(get_routes: set[str]) -> None:
    spec = container(manifest("Deployment"))
    port_names = {port["name"] for port in spec["ports"]}
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http_get = spec[probe]["httpGet"]
        assert http_get["path"] in get_routes, f"{probe} asks for {http_get['path']}"
        assert http_get["port"] in port_names
        paths[probe] = http_get["path"]
    # Readiness follows the database; liveness must not, or an outage restarts every pod.
    assert paths["readinessProbe"] == "/readyz"
    assert paths["livenessProbe"] == "/healthz"


def test_dockerfile_healthcheck_asks_a_get_route_of_the_app(get_routes: set[str]) -> None:
    healthcheck = only(final_stage(), "HEALTHCHECK")
    urls = re.findall(r"https?://[^'\"\s]+", healthcheck)
    assert urls, healthcheck
    assert all(urlsplit(url).path in get_routes for url in urls), urls


def compose_environment_names() -> set[str]:
    services = compose()["services"]
    return {name for service in YOUDAI_SERVICES for name in services[service]["environment"]}


def kubernetes_environment_names() -> set[str]:
    secret = manifest("Secret")
    names = set(manifest("ConfigMap")["data"])
    names |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for workload in (manifest("Deployment"), manifest("Job")):
        names |= {variable["name"] for variable in container(workload).get("env", [])}
    return names


def dockerfile_environment_names() -> set[str]:
    names = set()
    for keyword, arguments in dockerfile():
        if keyword == "ENV":
            words = shlex.split(arguments)
            names |= {word.split("=")[0] for word in words} if "=" in words[0] else {words[0]}
    return names - RUNTIME_VARIABLES


@pytest.mark.parametrize(
    "collect",
    [compose_environment_names, kubernetes_environment_names, dockerfile_environment_names],
    ids=["compose", "kubernetes", "dockerfile"],
)
def test_environment_names_in_deploy_files_are_settings_the_service_reads(collect) -> None:
    names = collect()
    assert names, "no environment variables found: the parser no longer sees them"
    unknown = names - set(ENVIRONMENT_VARIABLES)
    assert not unknown, f"not in service.config.ENVIRONMENT_VARIABLES: {sorted(unknown)}"


def test_every_setting_is_documented_in_config_md() -> None:
    reference = (DEPLOY / "CONFIG.md").read_text()
    missing = [name for name in ENVIRONMENT_VARIABLES if f"`{name}`" not in reference]
    assert not missing, f"deploy/CONFIG.md does not document {missing}"
    for flag in ("--host", "--port", "--workers", "--demo"):
        assert f"`{flag}" in reference, f"deploy/CONFIG.md does not document serve {flag}"


def test_placeholder_database_urls_have_the_shape_the_service_accepts() -> None:
    validate_database_url(manifest("Secret")["stringData"]["DATABASE_URL"])
    for service in YOUDAI_SERVICES:
        url = compose()["services"][service]["environment"]["DATABASE_URL"]
        validate_database_url(re.sub(r"\$\{[^}]*\}", "password", url))


def test_image_is_multi_stage_slim_and_runs_youdai_serve_as_a_non_root_user() -> None:
    froms = [arguments for keyword, arguments in dockerfile() if keyword == "FROM"]
    assert len(froms) >= 2, "the image is built in stages"
    assert froms[-1].split()[0] == "python:3.11-slim"
    stage = final_stage()
    user = only(stage, "USER").split(":")[0]
    assert user not in ("root", "0")
    assert only(stage, "HEALTHCHECK").split()[-1] != "NONE"
    assert image_entrypoint() == ["youdai"]
    assert json.loads(only(stage, "CMD"))[0] == "serve"
    assert "8080" in only(stage, "EXPOSE").split()


def test_kubernetes_pods_run_as_the_image_user_on_a_read_only_root() -> None:
    image_uid = int(only(final_stage(), "USER").split(":")[0])
    for workload in (manifest("Deployment"), manifest("Job")):
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == image_uid
        assert container(workload)["securityContext"]["readOnlyRootFilesystem"] is True
    deployment = manifest("Deployment")
    mounts = {mount["name"]: mount["mountPath"] for mount in container(deployment)["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod_spec(deployment)["volumes"]}
    assert {"/tmp", "/data"} <= set(mounts.values())
    assert all("emptyDir" in volumes[name] for name in mounts)


def test_deployment_drains_and_finishes_requests_within_the_grace_period() -> None:
    deployment = manifest("Deployment")
    spec = container(deployment)
    sleep = spec["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    assert grace == 30
    # After SIGTERM /readyz is 503 for the delay: the readiness probe must see it (every
    # failure it needs) before the process stops accepting, and the delay plus requests
    # in flight must end before the kill.
    delay = int(manifest("ConfigMap")["data"]["YOUDAI_SHUTDOWN_DELAY"])
    readiness = spec["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < delay
    assert int(sleep[1]) + delay + SHUTDOWN_GRACE < grace
    assert {"cpu", "memory"} <= set(spec["resources"]["requests"])
    assert {"cpu", "memory"} <= set(spec["resources"]["limits"])
    assert [ref for ref in spec["envFrom"] if "configMapRef" in ref]
    assert [ref for ref in spec["envFrom"] if "secretRef" in ref]


def test_compose_gives_the_shutdown_delay_and_requests_in_flight_time_to_end() -> None:
    service = compose()["services"]["youdai"]
    delay = service["environment"]["YOUDAI_SHUTDOWN_DELAY"]
    seconds = int(re.fullmatch(r"\$\{YOUDAI_SHUTDOWN_DELAY:-(\d+)\}", delay)[1])
    stop_grace = int(service["stop_grace_period"].removesuffix("s"))
    assert seconds + SHUTDOWN_GRACE < stop_grace


def test_kubernetes_objects_refer_to_each_other_by_the_right_names() -> None:
    deployment = manifest("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    port_names = {port["name"] for port in container(deployment)["ports"]}
    service = manifest("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    pdb = manifest("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = manifest("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert [m for m in hpa["spec"]["metrics"] if m["resource"]["name"] == "cpu"]
    config_name = manifest("ConfigMap")["metadata"]["name"]
    secret_name = manifest("Secret")["metadata"]["name"]
    for workload in (deployment, manifest("Job")):
        refs = container(workload)["envFrom"]
        assert {ref["configMapRef"]["name"] for ref in refs if "configMapRef" in ref} == {
            config_name
        }
        assert {ref["secretRef"]["name"] for ref in refs if "secretRef" in ref} == {secret_name}


def test_migration_job_and_compose_migrate_service_run_youdai_migrate() -> None:
    job = manifest("Job")
    assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
    assert container_argv(container(job)) == ["youdai", "migrate"]
    migrate = compose()["services"]["migrate"]
    argv = list(migrate.get("entrypoint") or image_entrypoint()) + list(migrate["command"])
    assert argv == ["youdai", "migrate"]


def test_compose_runs_postgres_15_then_migrate_then_the_service_with_workers() -> None:
    spec = compose()
    services = spec["services"]
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in spec["volumes"], "PostgreSQL data lives in a named volume"
    migrate, youdai = services["migrate"], services["youdai"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert youdai["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    argv = list(youdai.get("entrypoint") or image_entrypoint()) + list(youdai["command"])
    assert argv[:2] == ["youdai", "serve"]
    assert "--workers" in argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0"


def test_every_youdai_process_is_given_the_one_secret_key_that_seals_the_signing_keys() -> None:
    """A pod left to make up its own key could not open the keys another pod sealed."""
    secret = manifest("Secret")
    assert "YOUDAI_SECRET_KEY" in secret["stringData"]
    for workload in (manifest("Deployment"), manifest("Job")):
        named = {variable["name"]: variable for variable in container(workload)["env"]}
        reference = named["YOUDAI_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
        assert reference["name"] == secret["metadata"]["name"]
        assert reference["key"] == "YOUDAI_SECRET_KEY"
        assert not reference.get("optional", False)
    for service in YOUDAI_SERVICES:
        value = compose()["services"][service]["environment"]["YOUDAI_SECRET_KEY"]
        assert value.startswith("${YOUDAI_SECRET_KEY:?"), "compose must refuse to start without it"
