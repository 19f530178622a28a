"""Cold start of `youdai serve` on the embedded PostgreSQL: seconds until /readyz is 200,
on a fresh data folder (initdb + migrations) and on a reused one.

    .venv/bin/python bench/startup.py [--rounds 3]

Goal (issue 4): under 5 s on a reused data folder.
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
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_to_ready(data_dir: Path) -> float:
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("YOUDAI_") and k != "DATABASE_URL"
    }
    env.update(YOUDAI_DATA_DIR=str(data_dir), YOUDAI_LOG_LEVEL="WARNING")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit("youdai serve exited before it was ready")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


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
