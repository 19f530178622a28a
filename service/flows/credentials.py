"""One credential check for every kind of sign-in (holder card + PIN, staff email +
password): the address throttle, the per-row lockout, the decoy hash and the rehash are
written once here; each kind says only where its rows are and how it words a refusal.

The flow that signs in opens the transaction and calls `check_secret` on its
connection. A wrong secret is *counted* (the transaction must commit) and handed back as
`Checked.refusal` for the flow to raise after the commit; a locked row or a throttled
address is raised at once (nothing to record).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import asyncpg

from service.clock import Clock
from service.domain.errors import ApiError
from service.domain.language import Said
from service.domain.pins import hash_pin_off_loop, needs_rehash, verify_pin_off_loop
from service.domain.signin import DECOY_PIN
from service.flows.throttle import record_failed_sign_in, refuse_if_address_throttled

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Known(Generic[R]):
    """A row that holds a secret (a holder, a staff account), locked for the transaction.
    `usable` False (a staff account without a password yet, or disabled) answers as a
    wrong secret, after the same work."""

    id: str
    secret_hash: str | None
    locked: bool
    locked_until: datetime | None
    row: R
    usable: bool = True


@dataclass(frozen=True, slots=True)
class Lockout:
    locked: bool
    locked_until: datetime | None


class Store(Protocol[R]):
    """Where one kind of sign-in keeps its secrets and its failure counters."""

    async def lock(self, conn: asyncpg.Connection, key: str) -> Known[R] | None: ...

    async def lock_unknown(self, conn: asyncpg.Connection, key: str) -> Lockout: ...

    async def count_failure(self, conn: asyncpg.Connection, row_id: str) -> datetime | None: ...

    async def count_unknown_failure(
        self, conn: asyncpg.Connection, key: str
    ) -> datetime | None: ...

    async def clear_failures(self, conn: asyncpg.Connection, row_id: str) -> None: ...

    async def store_hash(self, conn: asyncpg.Connection, row_id: str, new_hash: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Refusals:
    """How one kind of sign-in words its refusals: `wrong_secret` for a wrong secret,
    `locked_for` the lockout from the minutes left. `says_when_locked`: the wrong secret
    that locks the row says so at once (the wallet tells the holder the card is locked and
    whom to call); otherwise it answers as any wrong secret (staff sign-in)."""

    wrong_secret: Said
    locked_for: Callable[[int], Said]
    says_when_locked: bool = False

    def wrong(self, locked_until: datetime | None, now: datetime) -> ApiError:
        if self.says_when_locked and locked_until is not None and locked_until > now:
            return self.locked(locked_until, now)
        return ApiError("unauthenticated", self.wrong_secret)

    def locked(self, until: datetime | None, now: datetime) -> ApiError:
        """`too_many_attempts` until `until` (a minute when unknown), with Retry-After."""
        seconds = max(1, math.ceil((until - now).total_seconds() if until else 60))
        return ApiError(
            "too_many_attempts",
            self.locked_for(math.ceil(seconds / 60)),
            headers={"Retry-After": str(seconds)},
        )


@dataclass(frozen=True, slots=True)
class Checked(Generic[R]):
    """The row whose secret was right (and usable), or the refusal to raise once the
    transaction that counted the failure has committed."""

    known: Known[R] | None
    refusal: ApiError | None


_decoy: list[str] = []


async def decoy_hash() -> str:
    """An argon2id hash of a secret nobody has, made once per process, off the event loop:
    verified for an unknown card or email so that it costs as much time as a real one."""
    if not _decoy:
        _decoy.append(await hash_pin_off_loop(DECOY_PIN))
    return _decoy[0]


async def check_secret(
    conn: asyncpg.Connection,
    store: Store[R],
    refusals: Refusals,
    key: str,
    secret: str,
    *,
    address: str,
    address_limit: int,
    clock: Clock,
) -> Checked[R]:
    """Judge `secret` for `key` in the caller's transaction, in one order for every kind:
    the address throttle; the row locked (an unknown key gets a row of attempts, so it
    locks as a real one does); a locked row refused; the hash verified (the decoy's when
    there is none); a failure counted on the row and on the address. A right secret
    clears the row's failures and upgrades an outdated hash (`accept`). A refusal reads
    the clock when it is made, after the slow hash, so its Retry-After is not one too many."""
    await refuse_if_address_throttled(conn, address, clock(), limit=address_limit)
    known = await store.lock(conn, key)
    if known is None:
        attempts = await store.lock_unknown(conn, key)
        if attempts.locked:
            raise refusals.locked(attempts.locked_until, clock())
        await verify_pin_off_loop(await decoy_hash(), secret)
        locked_until = await store.count_unknown_failure(conn, key)
        await record_failed_sign_in(conn, address, clock())
        return Checked(None, refusals.wrong(locked_until, clock()))
    if known.locked:
        raise refusals.locked(known.locked_until, clock())
    secret_hash = known.secret_hash or await decoy_hash()
    right = await verify_pin_off_loop(secret_hash, secret)
    if not right or known.secret_hash is None or not known.usable:
        locked_until = await count_failure(conn, store, known.id, address=address, now=clock())
        return Checked(None, refusals.wrong(locked_until, clock()))
    return Checked(known, None)


async def accept(conn: asyncpg.Connection, store: Store[R], known: Known[R], secret: str) -> None:
    """The secret was right and the sign-in goes ahead: forget the row's failures, and
    store a fresh hash when the stored one was made with outdated parameters."""
    await store.clear_failures(conn, known.id)
    if known.secret_hash is not None and needs_rehash(known.secret_hash):
        await store.store_hash(conn, known.id, await hash_pin_off_loop(secret))


async def count_failure(
    conn: asyncpg.Connection, store: Store[R], row_id: str, *, address: str, now: datetime
) -> datetime | None:
    """One failure on the row and on the address (a wrong secret, or a wrong second
    factor after a right one); answers the row's locked_until."""
    locked_until = await store.count_failure(conn, row_id)
    await record_failed_sign_in(conn, address, now)
    return locked_until
