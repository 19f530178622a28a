"""Cold start of `youdai serve` on the embedded PostgreSQL: seconds until /readyz is 200,
on a fresh data folder (initdb + migrations) and on a reused one.

    .venv/bin/python bench/startup.py [--rounds 3]

Goal (issue 4): under 5 s on a reused data folder.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder would come first on sys.path, where bench/token.py
# shadows the standard library's `token` module: put the repository root there instead.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ruff: noqa: E402  (the imports below must come after that)

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench._common import free_port, service_env, stop, wait_ready


def time_to_ready(data_dir: Path) -> float:
    port = free_port()
    env = service_env(YOUDAI_DATA_DIR=str(data_dir), YOUDAI_LOG_LEVEL="WARNING")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Polled every 20 ms: the figure is the time to ready, not the polling's.
        wait_ready(f"http://127.0.0.1:{port}/readyz", process, timeout=300, interval=0.02)
        return time.perf_counter() - started
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    fresh, reused = [], []
    for _ in range(rounds):
        folder = Path(tempfile.mkdtemp(prefix="youdai-bench-"))
        try:
            fresh.append(time_to_ready(folder))
            reused.append(time_to_ready(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(
        f"fresh data folder : median {statistics.median(fresh):.2f} s  (runs: "
        + ", ".join(f"{t:.2f}" for t in fresh)
        + ")"
    )
    print(
        f"reused data folder: median {statistics.median(reused):.2f} s  (runs: "
        + ", ".join(f"{t:.2f}" for t in reused)
        + ")"
    )
    print(f"reused / fresh    : {statistics.median(reused) / statistics.median(fresh):.2f}x")
    print("goal: reused < 5 s ->", "met" if statistics.median(reused) < 5 else "MISSED")


if __name__ == "__main__":
    main()
