"""`youdai serve --workers 2`: a worker killed with SIGKILL is replaced by the parent while
the other keeps answering; workers that keep dying stop the service with one line
instead of being restarted for ever."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from service.server import MAX_WORKER_RESTARTS
from tests.cli.test_shutdown import Served
from tests.conftest import cli_env, free_port

pytestmark = pytest.mark.slow


def serving_pids(served: Served) -> list[int]:
    return [record["pid"] for record in served.messages("serving")]


def wait_for(condition, what: str, served: Served, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}:\n" + "".join(served.lines[-30:])
        time.sleep(0.05)


class Asking:
    """Asks /healthz on a fresh connection every 50 ms; counts answers and failures."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/healthz"
        self.answered = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    assert answer.status == 200
                self.answered += 1
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                self.failed += 1
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_a_killed_worker_is_replaced_and_the_service_keeps_answering(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    served = Served(cli_env(DATABASE_URL=database_url, YOUDAI_DATA_DIR=str(tmp_path)), port, 2)
    try:
        served.wait_serving(2)
        victim, survivor = serving_pids(served)
        asking = Asking(port)
        time.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        killed_at = asking.answered
        wait_for(
            lambda: len(serving_pids(served)) == 3, "no worker replaced the one killed", served
        )
        answered_meanwhile = asking.answered - killed_at
        time.sleep(0.5)
        asking.stop()

        replacement = serving_pids(served)[2]
        assert replacement not in (victim, survivor)
        assert served.process.poll() is None, "the service stopped"
        assert answered_meanwhile > 0, "nothing answered while the worker was replaced"
        # A connection the kernel had queued on the killed worker's socket is reset with
        # it; every other request is answered.
        assert asking.failed <= 1, (asking.answered, asking.failed)
        died = served.messages("worker died: started another in its place")
        assert len(died) == 1 and died[0]["pid"] == victim
        assert died[0]["exitcode"] == -signal.SIGKILL
        assert died[0]["replacement_pid"] == replacement

        served.process.send_signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    finally:
        served.kill()


def test_workers_that_keep_dying_stop_the_service_with_one_line(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    served = Served(cli_env(DATABASE_URL=database_url, YOUDAI_DATA_DIR=str(tmp_path)), port, 2)
    try:
        served.wait_serving(2)
        for kills in range(MAX_WORKER_RESTARTS + 1):
            newest = serving_pids(served)[-1]
            os.kill(newest, signal.SIGKILL)
            if kills < MAX_WORKER_RESTARTS:
                wait_for(
                    lambda count=kills: len(serving_pids(served)) == count + 3,
                    f"no replacement after kill {kills + 1}",
                    served,
                )
        assert served.wait_exit() == 1
        stopped = [line for line in served.lines if "stopping the service" in line]
        assert len(stopped) == 1, "".join(served.lines[-30:])
        assert f"died {MAX_WORKER_RESTARTS + 1} times within 60 s" in stopped[0]
        assert len(served.messages("worker died: started another in its place")) == (
            MAX_WORKER_RESTARTS
        )
    finally:
        served.kill()
