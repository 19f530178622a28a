"""argon2id work of a holder import, on every core, in background processes.

One argon2id operation (~25 ms of one core, 19 MiB of memory: service.domain.pins)
per imported row is most of what an import costs, so a job hands batches of rows to
a pool of processes, one per usable core. Processes rather than threads (argon2-cffi
does release the GIL) for three reasons: their memory (19 MiB per hash in flight) is
not the server's, and goes back to the system when the job ends; they run as
background work (service.background: nice 19, an autogroup of their own at nice 19),
so sign-ins and redemptions served meanwhile take nearly all of a core when they
need one; and a worker that dies (out of memory) fails the job, not the server. Each
worker ends with the server, even when the server is killed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from service.background import BackgroundPool
from service.domain import pins

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


class PinHashPool(BackgroundPool):
    """A process pool for one job: `async with PinHashPool() as pool: await pool.hashes(…)`."""

    preload = (__name__,)

    async def __aenter__(self) -> PinHashPool:
        await super().__aenter__()
        return self

    def hashes(self, batch: Sequence[PinWork]) -> asyncio.Future[list[str]]:
        """hashes_for(batch) in a worker process."""
        return self.run(hashes_for, list(batch))
