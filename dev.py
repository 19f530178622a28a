#!/usr/bin/env python3
"""The two commands of the README, for a fresh machine with only Python 3.11+.

    python3 dev.py serve [--demo] [...]   run youdai (embedded PostgreSQL)
    python3 dev.py test [pytest args]     run the whole test suite
    python3 dev.py install                install everything (what CI runs first)

Each creates `.venv` on first use and (re)installs the project into it whenever
pyproject.toml changes, so nothing is installed system-wide (Debian and Ubuntu
refuse global pip installs). `serve` installs only what serving needs, so that the
demo is up quickly on a fresh clone; `test` and `install` add the test extra (pytest,
Playwright, schemathesis, mypy, …). Standard library only: this runs before any install.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".youdai-installed"


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on whatever python3 is
        print("youdai needs Python 3.11 or newer", file=sys.stderr)
        return 2
    if not argv or argv[0] not in ("serve", "test", "install"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv()
    ensure_installed(extras=() if command == "serve" else ("test",))
    if command == "install":
        return 0
    if command == "serve":
        # Development: nothing routes traffic here, so SIGTERM stops at once (docs/running.md).
        os.environ.setdefault("YOUDAI_SHUTDOWN_DELAY", "0")
        args = [str(VENV / "bin" / "youdai"), "serve", *rest]
    else:
        args = [str(PYTHON), "-m", "pytest", *rest]
    os.chdir(ROOT)
    os.execv(args[0], args)
    return 1  # not reached


def ensure_venv() -> None:
    if PYTHON.exists():
        return
    print("creating .venv …", flush=True)
    try:
        venv.create(VENV, with_pip=True)
    except subprocess.CalledProcessError:
        # Debian without python3-venv has no ensurepip: make the venv bare, then bring pip
        # from PyPI itself (a pip wheel can run itself to install pip).
        venv.create(VENV, with_pip=False, clear=True)
        bootstrap_pip()


def bootstrap_pip() -> None:
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    base = index[: -len("/simple")] if index.endswith("/simple") else "https://pypi.org"
    with urllib.request.urlopen(f"{base}/pypi/pip/json", timeout=60) as answer:
        release = json.load(answer)
    wheel = next(u for u in release["urls"] if u["packagetype"] == "bdist_wheel")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / wheel["filename"]
        with urllib.request.urlopen(wheel["url"], timeout=120) as answer:
            path.write_bytes(answer.read())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != wheel["digests"]["sha256"]:
            raise SystemExit("the downloaded pip wheel does not match PyPI's checksum")
        subprocess.check_call([str(PYTHON), f"{path}/pip", "install", "--quiet", str(path)])


def ensure_installed(extras: tuple[str, ...]) -> None:
    """Install the project with `extras`, again only when pyproject.toml changed or an
    extra is wanted that is not installed yet. The stamp records the pyproject.toml
    hash and the extras installed with it."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = STAMP.read_text().split() if STAMP.exists() else []
    if stamp[:1] == [digest] and set(extras) <= set(stamp[1:]):
        return
    installed = set(stamp[1:]) if stamp[:1] == [digest] else set()
    wanted = sorted(installed | set(extras))
    target = f"{ROOT}[{','.join(wanted)}]" if wanted else str(ROOT)
    print(
        f"installing youdai{' with ' + ', '.join(wanted) if wanted else ''} into .venv …",
        flush=True,
    )
    subprocess.check_call(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-e",
            target,
        ]
    )
    STAMP.write_text(" ".join([digest, *wanted]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
