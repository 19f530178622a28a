"""Holder PINs: argon2id hashing, in this one place.

Parameters (OWASP Password Storage Cheat Sheet, first argon2id choice): m = 19 MiB,
t = 2 passes, p = 1 lane, 16-byte salt, 32-byte tag. About 25 ms per hash on one core
of the reference machine, so one core handles ~40 sign-ins or import rows a second.
A 6–12 digit PIN is weak on its own; the hash makes a stolen table expensive to
crack and the sign-in lockout guards the online side.

Hashing is CPU work that would stall every request on the event loop, so async code
uses the `*_off_loop` helpers (the loop's default thread pool); an import hashes on a
pool of processes of its own (service.pin_hashing).
"""

from __future__ import annotations

import asyncio

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
