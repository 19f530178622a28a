"""argon2id work of a holder import, on every core, in processes of its own.

One argon2id operation (~25 ms of one core, 19 MiB of memory: service.domain.pins)
per imported row is most of what an import costs, so a job hands batches of rows to
a pool of processes, one per usable core. Processes rather than threads (argon2-cffi
does release the GIL) for three reasons: their memory (19 MiB per hash in flight) is
not the server's, and goes back to the system when the job ends; they run at a lower
CPU priority, so sign-ins and redemptions served meanwhile keep theirs; and a worker
that dies (out of memory) fails the job, not the server. Each worker ends with the
server, even when the server is killed.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from service.domain import pins
from service.memory import keep_large_allocations
from service.qr import usable_cores

#: How much lower than the server the hashing processes run (nice(2) increment).
NICENESS = 10

#: (PIN from the file, the stored hash of that card or None for a new card)
PinWork = tuple[str, str | None]


def hashes_for(batch: Sequence[PinWork]) -> list[str]:
    """For each row, the hash to store: the stored one when the file's PIN verifies
    against it (an unchanged PIN keeps its hash, so a re-import writes nothing), else a
    new one. Runs in a worker process."""
    return [
        stored if stored is not None and pins.verify_pin(stored, pin) else pins.hash_pin(pin)
        for pin, stored in batch
    ]


def _start_worker(server_pid: int) -> None:
    """Run below the server's priority, keep one argon2id buffer from hash to hash (the
    server's own setting would map and zero 19 MiB for each: service.memory), and end as
    soon as the server does: killed (SIGKILL), it cannot stop its pool, whose queued
    batches would go on burning cores. Ctrl-C on a terminal reaches every process of
    the group: the server's, not the worker's, to decide (it cancels the job)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(NICENESS)
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


class PinHashPool:
    """A process pool for one job: `async with PinHashPool() as pool: await pool.hashes(…)`."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or usable_cores()
        self._executor: ProcessPoolExecutor | None = None

    async def __aenter__(self) -> PinHashPool:
        # forkserver: workers fork from a clean single-threaded process that has imported
        # the hashing code, not from the server with its threads and sockets.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        self._executor = ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            # Cut short: drop the batches not started; each worker ends after its current one.
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    def hashes(self, batch: Sequence[PinWork]) -> asyncio.Future[list[str]]:
        """hashes_for(batch) in a worker process."""
        assert self._executor is not None, "use the pool inside `async with`"
        return asyncio.get_running_loop().run_in_executor(self._executor, hashes_for, list(batch))
