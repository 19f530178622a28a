"""Building deploy/Dockerfile with podman on a machine without a registry.

The Dockerfile's base image cannot be pulled here, so a Debian bookworm made with
debootstrap (with the Python the Dockerfile needs) is imported under the FROM name.
The root file system is kept as a tarball under CACHE, keyed by what went into it, so
a later run on the same machine imports it in seconds instead of bootstrapping again.
A base image already there that we did not make (a real python:3.11-slim) is used as
it is and never replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
#: Podman/buildah settings this machine needs (runc, cgroupfs, file events, ulimits).
CONTAINERS_CONF = Path(__file__).resolve().parent / "containers.conf"
CACHE = Path(os.environ.get("YOUDAI_CI_CACHE", "/var/cache/youdai-ci"))
#: The host's CA bundle: pip inside the build trusts what the host trusts.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LABEL = "org.youdai.ci-base"

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def base_image_name() -> str:
    """The final stage's FROM, as podman stores a short Docker Hub name."""
    froms = [
        line.split()[1]
        for line in DOCKERFILE.read_text().splitlines()
        if line.upper().startswith("FROM ")
    ]
    name = froms[-1]
    if "/" not in name:
        name = f"library/{name}"
    if "." not in name.split("/")[0]:
        name = f"docker.io/{name}"
    return name


def base_key() -> str:
    recipe = {"suite": SUITE, "variant": "minbase", "packages": PACKAGES, "mirror": MIRROR}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def missing_tools() -> list[str]:
    return [tool for tool in ("podman", "buildah", "runc") if shutil.which(tool) is None]


def ensure_base_image() -> str:
    """Make sure the FROM image exists; return how it came to be (for the test log)."""
    name, key = base_image_name(), base_key()
    found = podman("image", "inspect", name, check=False)
    if found.returncode == 0:
        labels = json.loads(found.stdout)[0].get("Labels") or {}
        if LABEL not in labels:
            return f"{name}: present, not ours, used as is"
        if labels[LABEL] == key:
            return f"{name}: our debootstrap image {key}"
    tarball = CACHE / f"base-{SUITE}-{key}.tar"
    how = f"imported {tarball}"
    if not tarball.exists():
        bootstrap(tarball)
        how = f"bootstrapped and imported {tarball}"
    podman(
        "import",
        "--change",
        f"LABEL {LABEL}={key}",
        "--change",
        'CMD ["python3"]',
        str(tarball),
        name,
        timeout=300,
    )
    return f"{name}: {how}"


def bootstrap(tarball: Path) -> None:
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        raise RuntimeError("making the base image needs debootstrap, run as root")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-") as folder:
        rootfs = Path(folder) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                MIRROR,
            ],
            check=True,
            capture_output=True,
            timeout=1200,
        )
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftovers).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            check=True,
            capture_output=True,
            timeout=600,
        )
        partial.replace(tarball)


def build(tag: str) -> subprocess.CompletedProcess:
    """`--format docker` keeps the HEALTHCHECK (the OCI format has none)."""
    volumes = ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"] if CA_BUNDLE.exists() else []
    return podman(
        "build",
        "--pull=never",
        "--format",
        "docker",
        "--network",
        "host",
        *volumes,
        "--file",
        str(DOCKERFILE),
        "--tag",
        tag,
        str(ROOT),
        timeout=1200,
        check=False,
    )
