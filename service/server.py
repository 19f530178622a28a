"""Serving: one process, or a parent that forks N workers sharing the port.

SIGTERM or SIGINT stops accepting connections, lets requests in flight finish
(up to SHUTDOWN_GRACE seconds), closes the pool, and only then does the caller
stop the embedded database.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
from contextlib import suppress

from aiohttp import web

from service.app import create_app
from service.config import Settings
from service.logs import configure_logging

log = logging.getLogger("youdai.server")

#: Seconds requests in flight get to finish after SIGTERM (Kubernetes waits 30 by default).
SHUTDOWN_GRACE = 20.0


async def _serve(settings: Settings, dsn: str, reuse_port: bool, ready: object = None) -> None:
    app = create_app(settings, dsn)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port, backlog=1024)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("serving", extra={"host": settings.host, "port": settings.port, "pid": os.getpid()})
    if ready is not None:
        ready.set()  # type: ignore[attr-defined]
    await stop.wait()
    log.info("shutting down: finishing requests in flight", extra={"pid": os.getpid()})
    await runner.cleanup()


def serve_single(settings: Settings, dsn: str) -> None:
    asyncio.run(_serve(settings, dsn, reuse_port=False))


def _worker_main(settings: Settings, dsn: str, ready: object) -> None:
    configure_logging(settings.log_format, settings.log_level)
    # The parent handles Ctrl-C for the group; workers stop on the SIGTERM it forwards.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(settings, dsn, reuse_port=True, ready=ready))


def serve_workers(settings: Settings, dsn: str) -> int:
    """Fork `settings.workers` processes that all accept on the same port (SO_REUSEPORT)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise RuntimeError("--workers needs SO_REUSEPORT (Linux, macOS)")
    context = multiprocessing.get_context("spawn")
    workers = []
    for _ in range(settings.workers):
        ready = context.Event()
        process = context.Process(target=_worker_main, args=(settings, dsn, ready), daemon=False)
        process.start()
        workers.append((process, ready))
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process, _ in workers:
            if process.is_alive() and process.pid:
                with suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    exit_code = 0
    for process, _ in workers:
        process.join()
        if process.exitcode not in (0, None) and not stopping:
            exit_code = 1
    return exit_code
