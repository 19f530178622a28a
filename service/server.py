"""Serving: one process, or a parent that starts N workers sharing the port.

SIGTERM (docs/running.md): /readyz turns 503 at once while the process keeps accepting and
answering for the shutdown delay (YOUDAI_SHUTDOWN_DELAY, so that load balancers stop
sending it anything new); then it stops accepting without resetting a connection
the kernel had already accepted for it (see Listener), lets every request in flight
finish (up to SHUTDOWN_GRACE seconds), closes the pool, and only then does the caller
stop the embedded database. SIGINT (Ctrl-C), or a second signal, skips what is left
of the delay. With workers, the parent forwards the signal to every worker and waits
for all of them; a worker that dies on its own is replaced (at most MAX_WORKER_RESTARTS
times in RESTART_WINDOW seconds: more, and the parent stops the others and exits 1 so
that a supervisor restarts the whole group).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Coroutine
from contextlib import ExitStack, suppress
from typing import Any, cast

from aiohttp import web

from service import metrics
from service.app import create_app
from service.app_keys import STOPPING
from service.config import Settings
from service.logs import configure_logging

log = logging.getLogger("youdai.server")

#: Seconds from closing the listener to exiting, at most: requests in flight finish
#: within it (Kubernetes waits 30 in all by default: deploy/k8s/deployment.yaml fits the
#: shutdown delay and this within it).
SHUTDOWN_GRACE = 20.0
#: The first of those seconds that a connection which has sent nothing yet gets to send
#: its request before it is closed unanswered (Go's http.Server.Shutdown gives such new
#: connections 5 s the same way): a client connects, then writes.
FIRST_REQUEST_GRACE = 2.0
#: Connections the kernel may queue for accepting.
BACKLOG = 1024
#: Seconds a handshake already under way gets to complete before the listener drains its
#: queue for the last time (Listener.close): a round trip, with room for a busy host.
HANDSHAKE_GRACE = 0.1

#: SO_ATTACH_FILTER (linux/socket.h; Python's socket module does not name it).
_SO_ATTACH_FILTER = 26
#: A classic BPF socket filter, run by the kernel on each segment for a listening socket
#: with the data at the TCP header: drop a bare SYN (flags & (SYN|ACK) == SYN), keep the
#: rest, so no new handshake starts and the ones under way complete.
_DROP_SYNS = (
    (0x30, 0, 0, 13),  # ldb [13]: the TCP flags
    (0x54, 0, 0, 0x12),  # and #(SYN|ACK)
    (0x15, 0, 1, 0x02),  # jeq #SYN: the next instruction, else the one after
    (0x06, 0, 0, 0),  # ret #0: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: keep it whole
)


def refuse_new_handshakes(listening: socket.socket) -> bool:
    """Make the kernel drop every new SYN for `listening` while handshakes already under
    way still complete into its queue (Linux; elsewhere nothing changes). A client whose
    SYN is dropped sends it again a second later: then to another worker sharing the
    port, or to a closed port, refused; never into a queue about to be closed. Whether
    the filter is on."""
    if sys.platform != "linux":
        return False
    program = ctypes.create_string_buffer(
        b"".join(struct.pack("HBBI", *instruction) for instruction in _DROP_SYNS)
    )
    fprog = struct.pack("HP", len(_DROP_SYNS), ctypes.addressof(program))  # sock_fprog
    try:
        listening.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError as error:  # a sandbox may forbid socket filters: drain and close anyway
        log.warning("listener: socket filter refused", extra={"error": str(error)})
        return False
    return True


class _Heard(asyncio.Protocol):
    """aiohttp's protocol for one connection, telling the listener once its client has
    sent anything: a connection still silent at shutdown is about to send its request."""

    __slots__ = ("_inner", "_listener")

    def __init__(self, inner: asyncio.Protocol, listener: Listener) -> None:
        self._inner = inner
        self._listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._listener.silent.add(self)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._listener.heard(self)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        self._listener.heard(self)
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._listener.heard(self)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def _accept_queued(listening: socket.socket) -> list[socket.socket]:
    """Every connection in the accept queue of `listening`, until it is empty."""
    listening.setblocking(False)
    accepted = []
    while True:
        try:
            accepted.append(listening.accept()[0])
        except (BlockingIOError, InterruptedError):
            return accepted
        except ConnectionAbortedError:
            continue  # the client gave up while queued


class Listener:
    """The listening sockets of one process, opened here rather than by an aiohttp site
    so that stopping resets nothing (docs/running.md).

    Closing a listening socket makes the kernel reset every connection still in its
    accept queue: connections it has accepted on our behalf (their client sees them
    open and has sent its request) that the event loop had not picked up yet. So
    `close` first stops new handshakes (refuse_new_handshakes) and gives those under way
    HANDSHAKE_GRACE to complete, then accepts everything queued, on a duplicate of each
    socket, and hands it to aiohttp like any other connection; only then does the socket
    close, with nothing in its queue, and a connection that comes after is refused,
    never reset mid-request. Without the first step, a handshake completing between the
    last accept and the close was reset: a few microseconds, unless the process is
    preempted there (docs/running.md has the measurement).
    """

    def __init__(self, protocol: Callable[[], asyncio.Protocol]) -> None:
        self._protocol = protocol
        self._server: asyncio.Server | None = None
        #: Connections whose client has sent nothing yet.
        self.silent: set[_Heard] = set()
        self._all_heard = asyncio.Event()

    def _connection(self) -> asyncio.Protocol:
        return _Heard(self._protocol(), self)

    def heard(self, connection: _Heard) -> None:
        if connection in self.silent:
            self.silent.discard(connection)
            if not self.silent:
                self._all_heard.set()

    async def open(self, host: str, port: int, *, reuse_port: bool) -> None:
        self._server = await asyncio.get_running_loop().create_server(
            self._connection,
            host,
            port,
            reuse_address=True,
            reuse_port=reuse_port or None,
            backlog=BACKLOG,
        )

    async def close(self) -> int:
        """Stop accepting; answer what the kernel had accepted. How many were queued."""
        server, self._server = self._server, None
        if server is None:
            return 0
        loop = asyncio.get_running_loop()
        queued: list[socket.socket] = []
        with ExitStack() as closing:
            duplicates = [
                closing.enter_context(socket.socket(fileno=os.dup(sock.fileno())))
                for sock in server.sockets
            ]
            try:
                if any([refuse_new_handshakes(listening) for listening in duplicates]):
                    await asyncio.sleep(HANDSHAKE_GRACE)  # the loop accepts them meanwhile
            finally:
                server.close()  # the loop stops accepting; the duplicates keep the sockets open
            for listening in duplicates:
                queued += _accept_queued(listening)
        # The sockets are closed, with nothing in their queues: closing reset nothing.
        for accepted in queued:
            try:
                await loop.connect_accepted_socket(self._connection, accepted)
            except OSError:  # reset by its client meanwhile: nobody to answer
                accepted.close()
        return len(queued)

    async def hear_first_requests(self) -> None:
        """Until every connection has sent something, so that closing the idle ones
        closes none whose first request is on its way."""
        while self.silent:
            self._all_heard.clear()
            await self._all_heard.wait()


async def _serve(settings: Settings, dsn: str, reuse_port: bool, ready: object = None) -> None:
    loop = asyncio.get_running_loop()
    signals: list[int] = []
    received = asyncio.Event()

    def on_signal(signum: int) -> None:
        signals.append(signum)
        received.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    app = create_app(settings, dsn)
    runner = web.AppRunner(
        app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE - FIRST_REQUEST_GRACE
    )
    await runner.setup()  # opens the pool
    listener = Listener(cast(Callable[[], asyncio.Protocol], runner.server))
    try:
        if not signals:
            await listener.open(settings.host, settings.port, reuse_port=reuse_port)
            log.info(
                "serving", extra={"host": settings.host, "port": settings.port, "pid": os.getpid()}
            )
            if ready is not None:
                ready.set()  # type: ignore[attr-defined]
            await received.wait()
            app[STOPPING].set()  # /readyz 503; answers close their connections
            delay = settings.shutdown_delay_seconds()
            if signals[0] == signal.SIGTERM and delay:
                log.info(
                    "shutting down: not ready, still serving",
                    extra={"seconds": delay, "pid": os.getpid()},
                )
                received.clear()  # a second signal cuts the delay short
                with suppress(TimeoutError):
                    await asyncio.wait_for(received.wait(), delay)
        queued = await listener.close()
        log.info(
            "shutting down: stopped accepting, finishing requests in flight",
            extra={"pid": os.getpid(), "queued": queued},
        )
        with suppress(TimeoutError):
            async with asyncio.timeout(FIRST_REQUEST_GRACE):
                await listener.hear_first_requests()
    finally:
        await listener.close()  # when cut short by an error
        # Closes idle connections, waits for handlers in flight (SHUTDOWN_GRACE in all),
        # then runs the app's cleanup: the pool closes last.
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


class _Supervisor:
    """The parent of the worker processes: starts them, forwards a stop signal to them,
    and replaces one that dies unasked (at most MAX_WORKER_RESTARTS in RESTART_WINDOW)."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self.settings = settings
        self.dsn = dsn
        self.stopping = False
        self.exit_code = 0
        self.workers: list[multiprocessing.process.BaseProcess] = []
        self.readies: list[object] = []
        self.restarts: deque[float] = deque()  # when each replacement started, in the window
        self.context = multiprocessing.get_context("spawn")

    def start_worker(self) -> multiprocessing.process.BaseProcess:
        ready = self.context.Event()  # kept referenced until the worker has unpickled it
        self.readies.append(ready)
        process = self.context.Process(
            target=_worker_main, args=(self.settings, self.dsn, ready), daemon=False
        )
        process.start()
        self.workers.append(process)
        return process

    def stop_all(self, signum: int = signal.SIGTERM) -> None:
        for process in self.workers:
            if process.is_alive() and process.pid:
                with suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def forward(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("stopping workers", extra={"signal": signal.Signals(signum).name})
        self.stopping = True
        self.stop_all(signum)  # SIGINT: the workers skip the shutdown delay too

    def run(self) -> None:
        for _ in range(self.settings.workers):
            if self.stopping:
                break
            self.start_worker()
        if self.stopping:  # a signal came while they started: make sure every one hears it
            self.stop_all()
        running = {worker.sentinel: worker for worker in self.workers}
        while running:
            for sentinel in multiprocessing.connection.wait(list(running)):
                ended = running.pop(cast(int, sentinel))
                ended.join()
                metrics.mark_process_dead(ended.pid or 0)
                replacement = self.after_exit(ended)
                if replacement is not None:
                    running[replacement.sentinel] = replacement

    def after_exit(
        self, ended: multiprocessing.process.BaseProcess
    ) -> multiprocessing.process.BaseProcess | None:
        """A worker ended: its replacement, or None when stopping (or it died too often)."""
        if self.stopping:
            if ended.exitcode not in (0, None, -signal.SIGTERM):
                self.exit_code = 1
            return None
        now = time.monotonic()
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW:
            self.restarts.popleft()
        if len(self.restarts) >= MAX_WORKER_RESTARTS:
            log.error(
                f"a worker died {MAX_WORKER_RESTARTS + 1} times within "
                f"{RESTART_WINDOW:.0f} s: stopping the service",
                extra={"pid": ended.pid, "exitcode": ended.exitcode},
            )
            self.exit_code = 1
            self.stopping = True
            self.stop_all()
            return None
        self.restarts.append(now)
        replacement = self.start_worker()
        log.error(
            "worker died: started another in its place",
            extra={
                "pid": ended.pid,
                "exitcode": ended.exitcode,
                "replacement_pid": replacement.pid,
                "restarts_in_window": len(self.restarts),
            },
        )
        if self.stopping:  # a signal came while it started
            self.stop_all()
        return replacement


def serve_workers(settings: Settings, dsn: str) -> int:
    """Start `settings.workers` processes that all accept on the same port (SO_REUSEPORT);
    replace one that dies (bounded, each logged); return 0 after a requested stop, 1 when
    workers died too often and the service stopped."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise RuntimeError("--workers needs SO_REUSEPORT (Linux, macOS)")
    supervisor = _Supervisor(settings, dsn)
    # Handlers first: a signal while the workers start must still reach them.
    previous = {
        signum: signal.signal(signum, supervisor.forward)
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    # Workers share their metrics through files in a folder of this run only (/metrics:
    # docs/running.md).
    metrics_dir = tempfile.mkdtemp(prefix="youdai-metrics-")
    os.environ[metrics.MULTIPROC_DIR_VARIABLE] = metrics_dir
    try:
        supervisor.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.environ.pop(metrics.MULTIPROC_DIR_VARIABLE, None)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return supervisor.exit_code
