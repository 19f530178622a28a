"""Serving: one process, or a parent that starts N workers sharing the port.

SIGTERM or SIGINT stops accepting connections (the listening socket closes, so new
connections are refused), lets requests in flight finish (up to SHUTDOWN_GRACE
seconds), closes the pool, and only then does the caller stop the embedded database.
With workers, the parent forwards the signal to every worker and waits for all of
them; a worker that dies on its own is replaced (at most MAX_WORKER_RESTARTS times in
RESTART_WINDOW seconds: more, and the parent stops the others and exits 1 so that a
supervisor restarts the whole group).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any, cast

from aiohttp import web

from service import metrics
from service.app import create_app
from service.config import Settings
from service.logs import configure_logging

log = logging.getLogger("youdai.server")

#: Seconds requests in flight get to finish after SIGTERM (Kubernetes waits 30 by default).
SHUTDOWN_GRACE = 20.0


async def _serve(settings: Settings, dsn: str, reuse_port: bool, ready: object = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(settings, dsn)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()  # opens the pool
    try:
        if not stop.is_set():
            site = web.TCPSite(
                runner, settings.host, settings.port, reuse_port=reuse_port, backlog=1024
            )
            await site.start()
            log.info(
                "serving", extra={"host": settings.host, "port": settings.port, "pid": os.getpid()}
            )
            if ready is not None:
                ready.set()  # type: ignore[attr-defined]
            await stop.wait()
        log.info("shutting down: finishing requests in flight", extra={"pid": os.getpid()})
    finally:
        # Closes the listening socket, waits for handlers in flight (up to
        # SHUTDOWN_GRACE), then runs the app's cleanup: the pool closes last.
        await runner.cleanup()
    log.info("stopped", extra={"pid": os.getpid()})


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop's event loop when uvloop is installed, else on asyncio's.

    uvloop does the loop's and the sockets' work in C: bench/redeem.py measures what it
    saves a redeem. It is optional: everything works the same without it."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def serve_single(settings: Settings, dsn: str) -> None:
    _run(_serve(settings, dsn, reuse_port=False))


def _worker_main(settings: Settings, dsn: str, ready: object) -> None:
    configure_logging(settings.log_format, settings.log_level)
    # The parent handles Ctrl-C for the group; workers stop on the SIGTERM it forwards.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A SIGTERM before the loop takes over finds nothing in flight: leave quietly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _run(_serve(settings, dsn, reuse_port=True, ready=ready))


#: A worker that dies is replaced at most this many times within RESTART_WINDOW seconds;
#: more means every worker dies (bad code, bad memory): stop rather than spin.
MAX_WORKER_RESTARTS = 5
RESTART_WINDOW = 60.0


def serve_workers(settings: Settings, dsn: str) -> int:
    """Start `settings.workers` processes that all accept on the same port (SO_REUSEPORT);
    replace one that dies (bounded, each logged); return 0 after a requested stop, 1 when
    workers died too often and the service stopped."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise RuntimeError("--workers needs SO_REUSEPORT (Linux, macOS)")
    stopping = False
    workers: list[multiprocessing.process.BaseProcess] = []
    readies: list[object] = []
    restarts: deque[float] = deque()  # when each replacement started, within the window

    def stop_all() -> None:
        for process in workers:
            if process.is_alive() and process.pid:
                with suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            log.info("stopping workers", extra={"signal": signal.Signals(signum).name})
        stopping = True
        stop_all()

    # Handlers first: a signal while the workers start must still reach them.
    previous = {
        signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    # Workers share their metrics through files in a folder of this run only (SPEC 6, /metrics).
    metrics_dir = tempfile.mkdtemp(prefix="youdai-metrics-")
    os.environ[metrics.MULTIPROC_DIR_VARIABLE] = metrics_dir
    exit_code = 0
    context = multiprocessing.get_context("spawn")

    def start_worker() -> multiprocessing.process.BaseProcess:
        ready = context.Event()  # kept referenced until the worker has unpickled it
        readies.append(ready)
        process = context.Process(target=_worker_main, args=(settings, dsn, ready), daemon=False)
        process.start()
        workers.append(process)
        return process

    try:
        for _ in range(settings.workers):
            if stopping:
                break
            start_worker()
        if stopping:  # a signal came while they started: make sure every one hears it
            stop_all()
        running = {worker.sentinel: worker for worker in workers}
        while running:
            for sentinel in multiprocessing.connection.wait(list(running)):
                ended = running.pop(cast(int, sentinel))
                ended.join()
                metrics.mark_process_dead(ended.pid or 0)
                if stopping:
                    if ended.exitcode not in (0, None, -signal.SIGTERM):
                        exit_code = 1
                    continue
                now = time.monotonic()
                while restarts and now - restarts[0] > RESTART_WINDOW:
                    restarts.popleft()
                if len(restarts) >= MAX_WORKER_RESTARTS:
                    log.error(
                        f"a worker died {MAX_WORKER_RESTARTS + 1} times within "
                        f"{RESTART_WINDOW:.0f} s: stopping the service",
                        extra={"pid": ended.pid, "exitcode": ended.exitcode},
                    )
                    exit_code = 1
                    stopping = True
                    stop_all()
                    continue
                restarts.append(now)
                replacement = start_worker()
                running[replacement.sentinel] = replacement
                log.error(
                    "worker died: started another in its place",
                    extra={
                        "pid": ended.pid,
                        "exitcode": ended.exitcode,
                        "replacement_pid": replacement.pid,
                        "restarts_in_window": len(restarts),
                    },
                )
                if stopping:  # a signal came while it started
                    stop_all()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.environ.pop(metrics.MULTIPROC_DIR_VARIABLE, None)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return exit_code
