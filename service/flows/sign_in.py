"""Holder sign-in (card number + PIN) and session lookup."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg

from service.db import holder_sessions as sessions_db
from service.domain.auth import Principal, holder_caller
from service.domain.errors import ApiError
from service.domain.holders import normalise_card_number
from service.domain.keys import SESSION_PREFIX, generate_session_token, hash_key
from service.domain.language import Said
from service.domain.pins import hash_pin_off_loop, needs_rehash, verify_pin_off_loop
from service.domain.signin import DECOY_PIN, SESSION_TTL
from service.domain.vouchers import check_holder_active
from service.flows.throttle import record_failed_sign_in, refuse_if_address_throttled

WRONG_CREDENTIALS = Said("The card number or PIN is wrong", "卡号或 PIN 错误")


_decoy: list[str] = []


async def _decoy_hash() -> str:
    """An argon2id hash of a PIN nobody has, made once, off the event loop."""
    if not _decoy:
        _decoy.append(await hash_pin_off_loop(DECOY_PIN))
    return _decoy[0]


async def sign_in(
    pool: asyncpg.Pool,
    card_number: str,
    pin: str,
    tz: ZoneInfo,
    *,
    address: str,
    address_limit: int,
) -> tuple[str, datetime]:
    """A new session token and its expiry, or the documented refusal (docs/api.md).

    An unknown card and a wrong PIN answer the same and take the same time (a PIN is
    verified either way), and five wrong guesses lock an unknown card number as they
    lock a real one. The row counting the guesses stays locked while the PIN is
    checked, so concurrent guesses are counted one by one and the lockout holds across
    processes. Failures also count against the client `address`, with every other kind
    of sign-in (flows.throttle): `address_limit` of them refuse the address for a while.
    """
    card = normalise_card_number(card_number)
    refusal: ApiError | None = None
    async with pool.acquire() as conn, conn.transaction():
        await refuse_if_address_throttled(conn, address, datetime.now(UTC), limit=address_limit)
        holder = await sessions_db.lock_holder_by_card(conn, card)
        if holder is None:
            attempts = await sessions_db.lock_unknown_card(conn, card)
            if attempts["locked"]:
                raise _locked(attempts["locked_until"])
            await verify_pin_off_loop(await _decoy_hash(), pin)
            # Recorded (the transaction commits), then refused below.
            counted = await sessions_db.record_wrong_pin_for_unknown_card(conn, card)
            await record_failed_sign_in(conn, address, datetime.now(UTC))
            refusal = _wrong_pin(counted["locked_until"])
        elif holder["locked"]:
            raise _locked(holder["locked_until"])
        elif not await verify_pin_off_loop(holder["pin_hash"], pin):
            # Recorded (the transaction commits), then refused below.
            counted = await sessions_db.record_wrong_pin(conn, holder["id"])
            await record_failed_sign_in(conn, address, datetime.now(UTC))
            refusal = _wrong_pin(counted["locked_until"])
        else:
            await sessions_db.clear_wrong_pins(conn, holder["id"])
            now = datetime.now(UTC)
            try:
                check_holder_active(holder["status"], holder["valid_until"], now, tz)
            except ApiError as inactive:
                refusal = inactive
            else:
                if needs_rehash(holder["pin_hash"]):
                    new_hash = await hash_pin_off_loop(pin)
                    await sessions_db.update_pin_hash(conn, holder["id"], new_hash)
                token = generate_session_token()
                expires_at = now + SESSION_TTL
                await sessions_db.create_session(conn, holder["id"], hash_key(token), expires_at)
    if refusal is not None:
        raise refusal
    return token, expires_at


def _wrong_pin(locked_until: datetime | None) -> ApiError:
    """A wrong PIN's answer: the one that locks the card says so at once (docs/pages.md: the
    wallet tells the holder the card is locked and whom to call), for a real card and an
    unknown one alike."""
    if locked_until is not None and locked_until > datetime.now(UTC):
        return _locked(locked_until)
    return ApiError("unauthenticated", WRONG_CREDENTIALS)


def _locked(until: datetime) -> ApiError:
    seconds = max(1, math.ceil((until - datetime.now(UTC)).total_seconds()))
    return ApiError(
        "too_many_attempts",
        Said(
            f"Too many wrong PINs: the card is locked for {math.ceil(seconds / 60)} more minute(s)",
            f"PIN 错误次数过多：此卡将再锁定 {math.ceil(seconds / 60)} 分钟",
        ),
        headers={"Retry-After": str(seconds)},
    )


def looks_like_session_token(token: str) -> bool:
    return token.startswith(SESSION_PREFIX) and len(token) <= 100


async def holder_principal(pool: asyncpg.Pool, token: str, tz: ZoneInfo) -> Principal | None:
    """The holder behind a session token; a holder no longer active is refused at once."""
    if not looks_like_session_token(token):
        return None
    async with pool.acquire() as conn:
        holder = await sessions_db.session_holder(conn, hash_key(token))
    if holder is None:
        return None
    check_holder_active(holder["status"], holder["valid_until"], datetime.now(UTC), tz)
    return holder_caller(holder["id"])


async def sign_out(pool: asyncpg.Pool, token: str, holder_id: str) -> None:
    """End the session `token` of this holder: it is refused from the next request on."""
    async with pool.acquire() as conn:
        await sessions_db.end_session(conn, hash_key(token), holder_id)
