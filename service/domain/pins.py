"""Holder PINs: argon2id hashing, in this one place.

Parameters (OWASP Password Storage Cheat Sheet, first argon2id choice): m = 19 MiB,
t = 2 passes, p = 1 lane, 16-byte salt, 32-byte tag. About 25 ms per hash on one core
of the reference machine, so one core handles ~40 sign-ins or import rows a second.
A 6–12 digit PIN is weak on its own; the hash makes a stolen table expensive to
crack and the sign-in lockout guards the online side.

Hashing is CPU work that would stall every request on the event loop, so async code
uses the `*_off_loop` helpers (the loop's default thread pool) and bulk work uses
`hash_pins`/`verify_pins` (a pool of its own, one thread per core). Threads are
enough: argon2-cffi releases the GIL while it hashes (measured: two threads on two
cores hash twice as fast as one), so a process pool would add only start-up and
pickling costs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1

_hasher = PasswordHasher(
    time_cost=TIME_COST,
    memory_cost=MEMORY_COST_KIB,
    parallelism=PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)

T = TypeVar("T")


def hash_pin(pin: str) -> str:
    """The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) to store; never the PIN."""
    return _hasher.hash(pin)


def verify_pin(pin_hash: str, pin: str) -> bool:
    """Whether `pin` matches the stored hash; a malformed hash never matches."""
    try:
        return _hasher.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(pin_hash: str) -> bool:
    """True when the hash was made with other parameters than today's (rehash on sign-in)."""
    try:
        return _hasher.check_needs_rehash(pin_hash)
    except InvalidHashError:
        return True


async def hash_pin_off_loop(pin: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, hash_pin, pin)


async def verify_pin_off_loop(pin_hash: str, pin: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, verify_pin, pin_hash, pin)


async def hash_pins(pins: Sequence[str]) -> list[str]:
    """Hash many PINs (an import) on every core, in a pool of its own so that sign-ins
    on the default pool do not queue behind thousands of rows."""
    return await _in_bulk_pool(hash_pin, [(pin,) for pin in pins])


async def verify_pins(pairs: Sequence[tuple[str, str]]) -> list[bool]:
    """verify_pin for many (pin_hash, pin) pairs, on every core."""
    return await _in_bulk_pool(verify_pin, list(pairs))


async def _in_bulk_pool(work: Callable[..., T], calls: list[tuple[str, ...]]) -> list[T]:
    if not calls:
        return []
    loop = asyncio.get_running_loop()
    workers = min(len(calls), os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="youdai-pins")
    try:
        return list(
            await asyncio.gather(*(loop.run_in_executor(pool, work, *args) for args in calls))
        )
    finally:
        # Cancelled midway (client gone): drop the queued rows rather than finish them.
        pool.shutdown(wait=False, cancel_futures=True)
