"""The import's hashing processes: argon2id's 19 MiB buffer is kept from hash to hash."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

from service.domain import pins
from service.memory import MMAP_THRESHOLD

HASHES = 6
#: One hash in fresh pages faults in all of its 19 MiB (4 864 pages of 4 KiB).
PAGES_PER_FRESH_BUFFER = pins.MEMORY_COST_KIB * 1024 // resource.getpagesize()

#: A pool worker as the server starts one: the server's malloc setting inherited, then
#: the pool's initializer; prints the minor page faults of HASHES hashes after a first.
WORKER = f"""
import os, resource
from service.domain import pins
from service.background import _start_worker
_start_worker(os.getppid())
pins.hash_pin("000000")
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for n in range({HASHES}):
    pins.hash_pin(f"{{n:06d}}")
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_a_hashing_process_reuses_its_buffer_despite_the_servers_malloc_setting() -> None:
    # The server serves large allocations by mmap (service.memory) and the processes it
    # starts inherit that. Before the fix each hash faulted in a fresh 19 MiB buffer
    # (29 190 faults for 6 hashes): a third of the pool's CPU went to the kernel.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, check=True
    )
    faults = int(done.stdout)
    assert faults < PAGES_PER_FRESH_BUFFER, f"{faults} page faults for {HASHES} hashes"
