"""The bureau's heavy work (argon2id for an import, checking its file, building a report
file) in processes that a till never waits behind.

A till's redeem needs a few milliseconds of CPU, now; an import needs twenty minutes of
both cores, some time soon. So the work runs in processes of its own (never a thread of
the server: pure Python holds the GIL, and the event loop would wait for it), at the
lowest CPU share the kernel gives an unprivileged process, but a share:

- a session of its own, whose autogroup runs at nice 19: where the kernel groups
  processes by session (`/proc/sys/kernel/sched_autogroup_enabled`, on by default on
  desktops and on many servers without a cgroup for the service), priorities count
  only within a group, and the server's group would otherwise get as much of a core
  for its background work as PostgreSQL's group does for the tills;
- nice 19 itself, for kernels without autogroups;
- the shortest time slice the kernel grants (0.1 ms, where its EEVDF scheduler takes one
  per task: Linux 6.12 on). Nice sets a share, not a wait: a till's process that wakes
  on a core where background work runs waits until that work's slice is over, 1.4 ms by
  default here, and a redeem wakes three or four processes in turn (measured with
  bench/isolation.py during back-to-back exports: a till's p99 11.4 ms against 6.9 ms
  alone with the default slice; 9.7 ms against 6.4 ms with this one).

Not SCHED_IDLE, though it yields the core faster: on a host kept busy by other work at
normal priority it gets no CPU at all, and an import would never end (measured with
bench/isolation.py on a shared machine: 0 rows in 60 s). Nice 19 still leaves the tills
about 98 % of a contended core. With nothing else running, the work gets every core as
before: bench/isolation.py measures both sides (the till's p99 alone and during the
work, the work's throughput alone and during the till's load).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import platform
import select
import signal
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from service.memory import keep_large_allocations
from service.qr import usable_cores

#: How much lower than the server a background process runs (nice(2) increment: the most).
NICENESS = 19
#: The nice value of a background process's own autogroup (the lowest there is).
AUTOGROUP_NICENESS = 19

R = TypeVar("R")


#: The time slice a background process asks for (sched_attr.sched_runtime, in ns): the
#: shortest the kernel grants.
SLICE_NS = 100_000
#: sched_setattr(2)'s number where we know it; elsewhere the slice stays the default.
_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}


def lower_priority() -> None:
    """Make the calling process background work: nice 19, its own session whose autogroup
    runs at nice 19, and the shortest time slice (see the module's docstring). Each step
    that the platform lacks is skipped; none needs a privilege."""
    os.nice(NICENESS)
    _shortest_slice()
    with contextlib.suppress(OSError):
        os.setsid()  # a new session is a new autogroup
        # Raising an autogroup's nice needs no privilege; without autogroups the file is
        # absent (or ignored) and nothing changes.
        Path("/proc/self/autogroup").write_text(f"{AUTOGROUP_NICENESS}\n")


def _shortest_slice() -> None:
    """SCHED_OTHER as it is, at this process's nice value, with a slice of SLICE_NS. A
    kernel before 6.12 takes the call and keeps its own slices; where the call is refused
    (a seccomp filter, another kernel), nothing changes."""
    number = _SCHED_SETATTR.get(platform.machine())
    if number is None:
        return
    # struct sched_attr, its first version (48 bytes): size, policy, flags, nice,
    # priority, runtime, deadline, period.
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    attr = struct.pack("=IIQiIQQQ", 48, os.SCHED_OTHER, 0, nice, 0, SLICE_NS, 0, 0)
    ctypes.CDLL(None, use_errno=True).syscall(number, 0, ctypes.c_char_p(attr), 0)


def _start_worker(server_pid: int) -> None:
    """Run as background work (lower_priority), keep one argon2id buffer from hash to
    hash (the server's own setting would map and zero 19 MiB for each: service.memory),
    and end as soon as the server does: killed (SIGKILL), it cannot stop its pool, whose
    queued tasks would go on burning cores. Ctrl-C on a terminal reaches every process
    of the group: the server's, not the worker's, to decide (it cancels the job)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lower_priority()
    keep_large_allocations()
    threading.Thread(target=_exit_with, args=(server_pid,), daemon=True).start()


def _exit_with(server_pid: int) -> None:
    try:
        server = os.pidfd_open(server_pid)  # readable once the server has ended
    except (AttributeError, OSError):  # not Linux ≥ 5.3: look every second
        while _running(server_pid):
            time.sleep(1.0)
    else:
        select.select([server], [], [])
    os._exit(1)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class BackgroundPool:
    """Background processes for one job: `async with BackgroundPool() as pool: await
    pool.run(f, …)`. One per usable core unless told."""

    #: Modules the processes import once, before any job (forkserver preload).
    preload: tuple[str, ...] = (__name__,)

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or usable_cores()
        self._executor: ProcessPoolExecutor | None = None

    async def __aenter__(self) -> BackgroundPool:
        # forkserver: workers fork from a clean single-threaded process that has imported
        # the job's code, not from the server with its threads and sockets.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(self.preload))
        self._executor = ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            # Cut short: drop the tasks not started; each worker ends after its current one.
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    def run(self, function: Callable[..., R], *args: Any) -> asyncio.Future[R]:
        """function(*args) in a background process (function and arguments pickled)."""
        assert self._executor is not None, "use the pool inside `async with`"
        return asyncio.get_running_loop().run_in_executor(self._executor, function, *args)


async def run_in_background(function: Callable[..., R], *args: Any) -> R:
    """function(*args) in a background process of its own, for one call that would hold
    the GIL for long (checking an import file, building a report file)."""
    async with BackgroundPool(1) as pool:
        return await pool.run(function, *args)
