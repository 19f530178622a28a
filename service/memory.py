"""Keep a worker's memory from growing with its thread count.

Each PIN check (argon2id) allocates 19 MiB. glibc serves allocations that large from
per-thread arenas and keeps them after the first free, so a process that once checked
PINs on six threads holds six times 19 MiB for good (measured: 59 MB -> 173 MB after 40
concurrent sign-ins). Serving allocations of 128 KiB and more by mmap returns them to
the system when freed (measured: stays at 59 MB). Spawned workers inherit the
environment variable; the running process is told through mallopt.

A process that only ever hashes, one PIN at a time (the import's hashing pool), wants
the opposite: mapping and unmapping its 19 MiB for every hash made the kernel fault in
and zero 4 864 fresh pages each time, a third of the pool's CPU (an import ran at 0.65x
the speed of argon2id alone). `keep_large_allocations` lets such a process keep its one
buffer for the next hash; the memory goes back when the process ends with its job.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MMAP_THRESHOLD = 128 * 1024
#: Allocations a hashing process serves from its heap and keeps there once freed.
KEPT_ALLOCATION_LIMIT = 64 * 1024 * 1024
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers
_M_MMAP_THRESHOLD = -3


def return_large_allocations_to_the_system() -> None:
    if not sys.platform.startswith("linux"):
        return
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    _mallopt((_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def keep_large_allocations() -> None:
    """For a single-threaded process that hashes PINs: allocations up to
    KEPT_ALLOCATION_LIMIT come from the heap and stay there when freed (neither unmapped
    nor trimmed), whatever MALLOC_MMAP_THRESHOLD_ the process inherited."""
    if sys.platform.startswith("linux"):
        _mallopt(
            (_M_MMAP_THRESHOLD, KEPT_ALLOCATION_LIMIT), (_M_TRIM_THRESHOLD, KEPT_ALLOCATION_LIMIT)
        )


def _mallopt(*settings: tuple[int, int]) -> None:
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    try:
        libc = ctypes.CDLL(libc_name)
        for parameter, value in settings:
            libc.mallopt(parameter, value)
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        pass
