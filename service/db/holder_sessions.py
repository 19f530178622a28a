"""SQL for holder sign-in: the lockout counters and session tokens."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from service.db.lockouts import clear_failures_sql, count_failure_sql, forget_expired_sql
from service.domain.signin import ATTEMPT_WINDOW, LOCK_DURATION, MAX_WRONG_PINS

_HOLDER = """
    SELECT id, card_number, category, display_name, region, valid_until, status, pin_hash,
           locked_until, locked_until > now() AS locked
    FROM holders WHERE card_number = $1
"""


async def lock_holder_by_card(conn: asyncpg.Connection, card_number: str) -> asyncpg.Record | None:
    """The holder row, locked for this transaction: concurrent sign-ins of one card are
    judged one after the other, so a burst of guesses cannot all slip past the lockout."""
    return await conn.fetchrow(_HOLDER + " FOR UPDATE", card_number)


_WRONG_PIN = count_failure_sql("holders", "id", "failed_pin")
_WRONG_PIN_UNKNOWN_CARD = count_failure_sql("unknown_card_attempts", "card_number", "failed_pin")
_CLEAR_WRONG_PINS = clear_failures_sql("holders", "failed_pin")
_FORGET_UNKNOWN_CARDS = forget_expired_sql("unknown_card_attempts", "failed_pin")


async def record_wrong_pin(conn: asyncpg.Connection, holder_id: str) -> asyncpg.Record:
    return await conn.fetchrow(_WRONG_PIN, holder_id, ATTEMPT_WINDOW, LOCK_DURATION, MAX_WRONG_PINS)


async def lock_unknown_card(conn: asyncpg.Connection, card_number: str) -> asyncpg.Record:
    """The attempts at a card number no holder has, created if new and locked for this
    transaction (like a holder row): concurrent guesses are counted one by one."""
    return await conn.fetchrow(
        """
        INSERT INTO unknown_card_attempts AS a (card_number) VALUES ($1)
        ON CONFLICT (card_number) DO UPDATE SET card_number = a.card_number
        RETURNING locked_until, locked_until > now() AS locked
        """,
        card_number,
    )


async def record_wrong_pin_for_unknown_card(
    conn: asyncpg.Connection, card_number: str
) -> asyncpg.Record:
    return await conn.fetchrow(
        _WRONG_PIN_UNKNOWN_CARD, card_number, ATTEMPT_WINDOW, LOCK_DURATION, MAX_WRONG_PINS
    )


async def forget_unknown_card_attempts(conn: asyncpg.Connection) -> int:
    """Housekeeping: attempts whose window and lock are both over count for nothing."""
    result = await conn.execute(_FORGET_UNKNOWN_CARDS, ATTEMPT_WINDOW)
    return int(result.split()[-1])


async def clear_wrong_pins(conn: asyncpg.Connection, holder_id: str) -> None:
    await conn.execute(_CLEAR_WRONG_PINS, holder_id)


async def update_pin_hash(conn: asyncpg.Connection, holder_id: str, pin_hash: str) -> None:
    await conn.execute("UPDATE holders SET pin_hash = $2 WHERE id = $1", holder_id, pin_hash)


async def create_session(
    conn: asyncpg.Connection, holder_id: str, token_hash: bytes, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO holder_sessions (token_hash, holder_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        holder_id,
        expires_at,
    )
    # Housekeeping: forget this holder's sessions that have expired.
    await conn.execute(
        "DELETE FROM holder_sessions WHERE holder_id = $1 AND expires_at < now()", holder_id
    )


async def end_session(conn: asyncpg.Connection, token_hash: bytes, holder_id: str) -> None:
    """Forget one of the holder's sessions (signing out)."""
    await conn.execute(
        "DELETE FROM holder_sessions WHERE token_hash = $1 AND holder_id = $2",
        token_hash,
        holder_id,
    )


async def session_holder(conn: asyncpg.Connection, token_hash: bytes) -> asyncpg.Record | None:
    """The holder behind a live session token, or None."""
    return await conn.fetchrow(
        """
        SELECT h.id, h.status, h.valid_until, h.category
        FROM holder_sessions s JOIN holders h ON h.id = s.holder_id
        WHERE s.token_hash = $1 AND s.expires_at > now()
        """,
        token_hash,
    )
