"""A newcomer's first start: seconds from a fresh clone to the demo answering /readyz.

    python3 bench/first_start.py [--rounds 1] [--no-pip-cache] [--repo PATH]

Clones the repository (its committed HEAD; default: this one) into a temporary folder,
runs the README's first command there, `python3 dev.py serve --demo`, on a free port,
and measures the time until GET /readyz answers 200; then sends SIGTERM, waits for the
exit and removes the folder. Everything the command does is counted: making .venv,
installing what serving needs, starting the embedded PostgreSQL (initdb), migrating
and loading the demo data. The phases: venv (until dev.py says it installs), install
(until it writes its stamp in .venv), start (the service, until /readyz answers).

pip's cache (~/.cache/pip) makes the install faster than on a truly fresh machine:
`--no-pip-cache` runs with PIP_NO_CACHE_DIR=1. Wheels still come from the configured
index either way.

Goal (issue 32 line 17): ready in under 45 s. Standard library only, like dev.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

GOAL_SECONDS = 45.0
ROOT = Path(__file__).resolve().parent.parent
#: dev.py's lines that open a phase, and the phase's name (the venv phase opens at once).
PHASES = {"installing youdai": "install"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def first_start(repo: Path, python: str, pip_cache: bool) -> dict[str, float]:
    """Seconds to ready and per phase, for one fresh clone."""
    folder = Path(tempfile.mkdtemp(prefix="youdai-first-start-"))
    clone = folder / "youdai"
    process: subprocess.Popen[str] | None = None
    try:
        subprocess.run(["git", "clone", "--quiet", str(repo), str(clone)], check=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("YOUDAI_") and key not in ("DATABASE_URL", "VIRTUAL_ENV")
        }
        if not pip_cache:
            env["PIP_NO_CACHE_DIR"] = "1"
        port = free_port()
        marks: dict[str, float] = {}
        started = time.perf_counter()
        process = subprocess.Popen(
            [python, "dev.py", "serve", "--demo", "--port", str(port)],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output: list[str] = []

        def read() -> None:
            assert process is not None and process.stdout is not None
            for line in process.stdout:
                output.append(line)
                for opening, phase in PHASES.items():
                    if line.startswith(opening):
                        marks.setdefault(phase, time.perf_counter())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        url = f"http://127.0.0.1:{port}/readyz"
        stamp = clone / ".venv" / ".youdai-installed"  # dev.py writes it once pip is done
        while not ready(url):
            if "installed" not in marks and stamp.exists():
                marks["installed"] = time.perf_counter()
            if process.poll() is not None:
                reader.join(timeout=5)
                raise SystemExit("dev.py serve --demo exited:\n" + "".join(output[-30:]))
            if time.perf_counter() - started > 900:
                raise SystemExit("not ready after 15 minutes")
            time.sleep(0.1)
        done = time.perf_counter()
        return {
            "total": done - started,
            "venv": marks.get("install", started) - started,
            "install": marks.get("installed", done) - marks.get("install", started),
            "start": done - marks.get("installed", done),
        }
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-pip-cache", action="store_true", help="PIP_NO_CACHE_DIR=1")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the repository to clone")
    parser.add_argument("--python", default=shutil.which("python3") or sys.executable)
    args = parser.parse_args()
    runs = [first_start(args.repo, args.python, not args.no_pip_cache) for _ in range(args.rounds)]
    for run in runs:
        phases = ", ".join(f"{name} {run[name]:.1f} s" for name in ("venv", "install", "start"))
        print(f"fresh clone to /readyz 200: {run['total']:.1f} s  ({phases})")
    median = statistics.median(run["total"] for run in runs)
    cache = "without pip's cache" if args.no_pip_cache else "with pip's cache"
    print(f"median {median:.1f} s over {len(runs)} run(s), {cache}")
    print(f"goal: < {GOAL_SECONDS:.0f} s ->", "met" if median < GOAL_SECONDS else "MISSED")


if __name__ == "__main__":
    main()
