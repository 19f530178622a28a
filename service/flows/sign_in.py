"""Holder sign-in (card number + PIN) and session lookup."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from service.clock import Clock, system_clock
from service.db import holder_sessions as sessions_db
from service.domain.auth import Principal, holder_caller
from service.domain.errors import ApiError
from service.domain.holders import normalise_card_number
from service.domain.keys import SESSION_PREFIX, generate_session_token, hash_key
from service.domain.language import Said
from service.domain.signin import SESSION_TTL
from service.domain.vouchers import check_holder_active
from service.flows.credentials import (
    Checked,
    Known,
    Lockout,
    Refusals,
    accept,
    check_secret,
)

WRONG_CREDENTIALS = Said("The card number or PIN is wrong", "卡号或 PIN 错误")


class _HolderCards:
    """Holders' cards and the attempts at card numbers no holder has (flows.credentials)."""

    async def lock(self, conn: asyncpg.Connection, key: str) -> Known[asyncpg.Record] | None:
        holder = await sessions_db.lock_holder_by_card(conn, key)
        if holder is None:
            return None
        return Known(
            holder["id"], holder["pin_hash"], holder["locked"], holder["locked_until"], holder
        )

    async def lock_unknown(self, conn: asyncpg.Connection, key: str) -> Lockout:
        attempts = await sessions_db.lock_unknown_card(conn, key)
        return Lockout(attempts["locked"], attempts["locked_until"])

    async def count_failure(self, conn: asyncpg.Connection, row_id: str) -> datetime | None:
        counted = await sessions_db.record_wrong_pin(conn, row_id)
        locked_until: datetime | None = counted["locked_until"]
        return locked_until

    async def count_unknown_failure(self, conn: asyncpg.Connection, key: str) -> datetime | None:
        counted = await sessions_db.record_wrong_pin_for_unknown_card(conn, key)
        locked_until: datetime | None = counted["locked_until"]
        return locked_until

    async def clear_failures(self, conn: asyncpg.Connection, row_id: str) -> None:
        await sessions_db.clear_wrong_pins(conn, row_id)

    async def store_hash(self, conn: asyncpg.Connection, row_id: str, new_hash: str) -> None:
        await sessions_db.update_pin_hash(conn, row_id, new_hash)


_CARDS = _HolderCards()


async def sign_in(
    pool: asyncpg.Pool,
    card_number: str,
    pin: str,
    tz: ZoneInfo,
    *,
    address: str,
    address_limit: int,
    clock: Clock = system_clock,
) -> tuple[str, datetime]:
    """A new session token and its expiry, or the documented refusal (docs/api.md).

    An unknown card and a wrong PIN answer the same and take the same time (a PIN is
    verified either way), and five wrong guesses lock an unknown card number as they
    lock a real one. The row counting the guesses stays locked while the PIN is
    checked, so concurrent guesses are counted one by one and the lockout holds across
    processes. Failures also count against the client `address`, with every other kind
    of sign-in (flows.throttle): `address_limit` of them refuse the address for a while.
    The order of these checks is flows.credentials.check_secret, shared with staff.
    """
    card = normalise_card_number(card_number)
    async with pool.acquire() as conn, conn.transaction():
        checked = await check_secret(
            conn,
            _CARDS,
            _REFUSALS,
            card,
            pin,
            address=address,
            address_limit=address_limit,
            clock=clock,
        )
        if checked.known is not None:
            await accept(conn, _CARDS, checked.known, pin)
            holder = checked.known.row
            now = clock()
            try:
                check_holder_active(holder["status"], holder["valid_until"], now, tz)
            except ApiError as inactive:
                # The cleared failures commit; the holder is refused below.
                checked = Checked(None, inactive)
            else:
                token = generate_session_token()
                expires_at = now + SESSION_TTL
                await sessions_db.create_session(conn, holder["id"], hash_key(token), expires_at)
    if checked.refusal is not None:
        raise checked.refusal
    return token, expires_at


#: A wrong PIN that locks the card says so at once (docs/pages.md), for a real card and an
#: unknown one alike.
_REFUSALS = Refusals(
    wrong_secret=WRONG_CREDENTIALS,
    locked_for=lambda minutes: Said(
        f"Too many wrong PINs: the card is locked for {minutes} more minute(s)",
        f"PIN 错误次数过多：此卡将再锁定 {minutes} 分钟",
    ),
    says_when_locked=True,
)


def looks_like_session_token(token: str) -> bool:
    return token.startswith(SESSION_PREFIX) and len(token) <= 100


async def holder_principal(
    pool: asyncpg.Pool, token: str, tz: ZoneInfo, *, clock: Clock = system_clock
) -> Principal | None:
    """The holder behind a session token; a holder no longer active is refused at once."""
    if not looks_like_session_token(token):
        return None
    async with pool.acquire() as conn:
        holder = await sessions_db.session_holder(conn, hash_key(token))
    if holder is None:
        return None
    check_holder_active(holder["status"], holder["valid_until"], clock(), tz)
    return holder_caller(holder["id"])


async def sign_out(pool: asyncpg.Pool, token: str, holder_id: str) -> None:
    """End the session `token` of this holder: it is refused from the next request on."""
    async with pool.acquire() as conn:
        await sessions_db.end_session(conn, hash_key(token), holder_id)
