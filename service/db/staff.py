"""SQL for staff accounts, their invitations, sign-in counters and sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import asyncpg

from service.db.lockouts import clear_failures_sql, count_failure_sql, forget_expired_sql
from service.domain.pagination import PageRequest
from service.domain.staff import StaffAccount

_ACCOUNT_COLUMNS = """
    a.id, a.email, a.display_name, a.role, a.partner_id, a.status, a.totp_enabled,
    a.created_at, a.updated_at
"""


@dataclass(frozen=True, slots=True)
class SignInFacts:
    """An account as sign-in needs it (row locked for the transaction)."""

    account: StaffAccount
    password_hash: str | None
    totp_secret_sealed: bytes | None
    totp_last_step: int | None
    locked_until: datetime | None
    locked: bool


@dataclass(frozen=True, slots=True)
class Lockout:
    locked_until: datetime | None
    locked: bool


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """The account behind a live session."""

    session_id: str
    account: StaffAccount
    expires_at: datetime


def _account(row: asyncpg.Record) -> StaffAccount:
    return StaffAccount(**{name: row[name] for name in StaffAccount.__slots__})


async def create_account(
    conn: asyncpg.Connection,
    *,
    staff_id: str,
    email: str,
    display_name: str,
    role: str,
    partner_id: str | None,
) -> StaffAccount | None:
    """The new account, or None when the email (in any case) already has one."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO staff_accounts AS a (id, email, display_name, role, partner_id)
        VALUES ($1, $2, $3, $4, $5)
        -- Emails are unique whatever their case.
        ON CONFLICT ((lower(email))) DO NOTHING
        RETURNING {_ACCOUNT_COLUMNS}
        """,
        staff_id,
        email,
        display_name,
        role,
        partner_id,
    )
    return None if row is None else _account(row)


async def get_account(conn: asyncpg.Connection, staff_id: str) -> StaffAccount | None:
    row = await conn.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM staff_accounts a WHERE a.id = $1", staff_id
    )
    return None if row is None else _account(row)


async def lock_account(conn: asyncpg.Connection, staff_id: str) -> StaffAccount | None:
    """The account, locked for this transaction (changes to one account are serialised)."""
    row = await conn.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM staff_accounts a WHERE a.id = $1 FOR UPDATE", staff_id
    )
    return None if row is None else _account(row)


async def find_by_email(conn: asyncpg.Connection, email: str) -> StaffAccount | None:
    row = await conn.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM staff_accounts a WHERE lower(a.email) = lower($1)", email
    )
    return None if row is None else _account(row)


async def list_accounts(
    conn: asyncpg.Connection,
    page: PageRequest,
    *,
    role: str | None = None,
    status: str | None = None,
    partner_id: str | None = None,
    q: str | None = None,
) -> list[StaffAccount]:
    rows = await conn.fetch(
        f"""
        SELECT {_ACCOUNT_COLUMNS} FROM staff_accounts a
        WHERE ($1::text IS NULL OR a.id > $1)
          AND ($2::text IS NULL OR a.role = $2)
          AND ($3::text IS NULL OR a.status = $3)
          AND ($4::text IS NULL OR a.partner_id = $4)
          AND ($5::text IS NULL OR strpos(lower(a.email), lower($5)) > 0
               OR strpos(lower(a.display_name), lower($5)) > 0)
        ORDER BY a.id
        LIMIT $6
        """,
        page.after_id,
        role,
        status,
        partner_id,
        q,
        page.limit + 1,
    )
    return [_account(row) for row in rows]


async def update_account(
    conn: asyncpg.Connection, staff_id: str, changes: dict[str, Any]
) -> StaffAccount:
    """Apply `changes` (display_name, role, partner_id, status) to a locked account."""
    allowed = ("display_name", "role", "partner_id", "status")
    names = [name for name in allowed if name in changes]
    sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    row = await conn.fetchrow(
        f"""
        UPDATE staff_accounts a SET {sets + ", " if sets else ""}updated_at = now()
        WHERE a.id = $1
        RETURNING {_ACCOUNT_COLUMNS}
        """,
        staff_id,
        *(changes[name] for name in names),
    )
    return _account(row)


async def lock_active_bureau_admins(conn: asyncpg.Connection) -> list[str]:
    """The ids of every active bureau_admin, locked: two admins demoting each other at
    once are judged one after the other, so one always remains."""
    rows = await conn.fetch(
        """
        SELECT id FROM staff_accounts
        WHERE role = 'bureau_admin' AND status = 'active'
        ORDER BY id
        FOR UPDATE
        """
    )
    return [row["id"] for row in rows]


# Invitations ------------------------------------------------------------------------


async def create_invitation(
    conn: asyncpg.Connection, staff_id: str, token_hash: bytes, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO staff_invitations (token_hash, staff_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        staff_id,
        expires_at,
    )


async def take_invitation(conn: asyncpg.Connection, token_hash: bytes) -> str | None:
    """Use an invitation once; the account id, or None when unknown, used or expired."""
    return cast(
        str | None,
        await conn.fetchval(
            """
        UPDATE staff_invitations SET used_at = now()
        -- A setup link works once, and only within its 72 hours.
        WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
        RETURNING staff_id
        """,
            token_hash,
        ),
    )


async def set_password(conn: asyncpg.Connection, staff_id: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE staff_accounts SET password_hash = $2, updated_at = now() WHERE id = $1",
        staff_id,
        password_hash,
    )


# Sign-in ------------------------------------------------------------------------------


async def lock_for_sign_in(conn: asyncpg.Connection, email: str) -> SignInFacts | None:
    """The account with this email, locked for this transaction: concurrent sign-ins are
    judged one after the other, so a burst of guesses cannot slip past the lockout."""
    row = await conn.fetchrow(
        f"""
        SELECT {_ACCOUNT_COLUMNS}, a.password_hash, a.totp_secret_sealed, a.totp_last_step,
               a.locked_until, coalesce(a.locked_until > now(), false) AS locked
        FROM staff_accounts a WHERE lower(a.email) = lower($1)
        FOR UPDATE
        """,
        email,
    )
    if row is None:
        return None
    return SignInFacts(
        account=_account(row),
        password_hash=row["password_hash"],
        totp_secret_sealed=row["totp_secret_sealed"],
        totp_last_step=row["totp_last_step"],
        locked_until=row["locked_until"],
        locked=row["locked"],
    )


async def lock_unknown_email(conn: asyncpg.Connection, email: str) -> Lockout:
    """The attempts at an email no account has, created if new and locked like an
    account row, so concurrent guesses are counted one by one."""
    row = await conn.fetchrow(
        """
        INSERT INTO staff_unknown_email_attempts AS u (email) VALUES (lower($1))
        ON CONFLICT (email) DO UPDATE SET email = u.email
        RETURNING locked_until, coalesce(locked_until > now(), false) AS locked
        """,
        email,
    )
    return Lockout(row["locked_until"], row["locked"])


_FAILED = count_failure_sql("staff_accounts", "id", "failed_signin")
_FAILED_UNKNOWN = count_failure_sql("staff_unknown_email_attempts", "email", "failed_signin")
_CLEAR_FAILED = clear_failures_sql("staff_accounts", "failed_signin")
_FORGET_UNKNOWN = forget_expired_sql("staff_unknown_email_attempts", "failed_signin")


async def record_failed_sign_in(
    conn: asyncpg.Connection, staff_id: str, window: timedelta, lock: timedelta, limit: int
) -> None:
    await conn.execute(_FAILED, staff_id, window, lock, limit)


async def record_failed_sign_in_unknown(
    conn: asyncpg.Connection, email: str, window: timedelta, lock: timedelta, limit: int
) -> None:
    await conn.execute(_FAILED_UNKNOWN, email.lower(), window, lock, limit)


async def clear_failed_sign_ins(conn: asyncpg.Connection, staff_id: str) -> None:
    await conn.execute(_CLEAR_FAILED, staff_id)


async def forget_unknown_email_attempts(conn: asyncpg.Connection, window: timedelta) -> int:
    """Housekeeping: attempts whose window and lock are both over count for nothing."""
    result = await conn.execute(_FORGET_UNKNOWN, window)
    return int(result.split()[-1])


# Second factor --------------------------------------------------------------------------


async def set_pending_totp(conn: asyncpg.Connection, staff_id: str, sealed: bytes) -> None:
    await conn.execute(
        "UPDATE staff_accounts SET pending_totp_sealed = $2 WHERE id = $1", staff_id, sealed
    )


async def pending_totp(conn: asyncpg.Connection, staff_id: str) -> bytes | None:
    return cast(
        bytes | None,
        await conn.fetchval(
            "SELECT pending_totp_sealed FROM staff_accounts WHERE id = $1 FOR UPDATE", staff_id
        ),
    )


async def enable_totp(conn: asyncpg.Connection, staff_id: str, sealed: bytes, step: int) -> None:
    await conn.execute(
        """
        UPDATE staff_accounts SET totp_secret_sealed = $2, totp_enabled = true,
               totp_last_step = $3, pending_totp_sealed = NULL, updated_at = now()
        WHERE id = $1
        """,
        staff_id,
        sealed,
        step,
    )


async def accept_totp_step(conn: asyncpg.Connection, staff_id: str, step: int) -> bool:
    """Remember the step of an accepted code; False when it (or a later one) was used."""
    result: str = await conn.execute(
        """
        UPDATE staff_accounts SET totp_last_step = $2
        -- A TOTP code is accepted once: never a step at or before the last accepted.
        WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)
        """,
        staff_id,
        step,
    )
    return result.endswith(" 1")


@dataclass(frozen=True, slots=True)
class SealedTotp:
    """An account's second-factor secrets as stored: sealed with the key-encryption key."""

    staff_id: str
    email: str
    totp_enabled: bool
    secret_sealed: bytes | None
    pending_sealed: bytes | None


async def sealed_totp_secrets(conn: asyncpg.Connection) -> list[SealedTotp]:
    """Every account holding a sealed secret (enrolled or enrolling), rows locked."""
    rows = await conn.fetch(
        """
        SELECT id, email, totp_enabled, totp_secret_sealed, pending_totp_sealed
        FROM staff_accounts
        WHERE totp_secret_sealed IS NOT NULL OR pending_totp_sealed IS NOT NULL
        ORDER BY created_at, id FOR UPDATE
        """
    )
    return [
        SealedTotp(
            staff_id=row["id"],
            email=row["email"],
            totp_enabled=row["totp_enabled"],
            secret_sealed=None if row[3] is None else bytes(row[3]),
            pending_sealed=None if row[4] is None else bytes(row[4]),
        )
        for row in rows
    ]


async def store_sealed_totp(
    conn: asyncpg.Connection, staff_id: str, secret: bytes | None, pending: bytes | None
) -> None:
    """The same secrets sealed again (under another key-encryption key)."""
    await conn.execute(
        "UPDATE staff_accounts SET totp_secret_sealed = $2, pending_totp_sealed = $3 WHERE id = $1",
        staff_id,
        secret,
        pending,
    )


async def reset_totp(conn: asyncpg.Connection, staff_id: str) -> None:
    await conn.execute(
        """
        UPDATE staff_accounts SET totp_secret_sealed = NULL, totp_enabled = false,
               totp_last_step = NULL, pending_totp_sealed = NULL, updated_at = now()
        WHERE id = $1
        """,
        staff_id,
    )


# Sessions -------------------------------------------------------------------------------


async def create_session(
    conn: asyncpg.Connection,
    *,
    session_id: str,
    secret_hash: bytes,
    staff_id: str,
    role: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO staff_sessions (id, secret_hash, staff_id, role, expires_at)
        VALUES ($1, $2, $3, $4, $5)
        """,
        session_id,
        secret_hash,
        staff_id,
        role,
        expires_at,
    )
    # Housekeeping: forget this account's sessions that are over.
    await conn.execute(
        "DELETE FROM staff_sessions WHERE staff_id = $1 AND expires_at < now()", staff_id
    )


async def live_session(
    conn: asyncpg.Connection, secret_hash: bytes, idle: timedelta, touch_after: timedelta
) -> SessionFacts | None:
    """The account behind a live session, read on every request (never cached), so a
    session ended in one process is refused by every other at once."""
    row = await conn.fetchrow(
        f"""
        SELECT s.id AS session_id, s.expires_at,
               s.last_seen_at < now() - $3::interval AS stale, {_ACCOUNT_COLUMNS}
        FROM staff_sessions s JOIN staff_accounts a ON a.id = s.staff_id
        -- Sessions end after 12 hours, after 30 minutes idle, when the account is
        -- disabled and when its role changes.
        WHERE s.secret_hash = $1 AND s.expires_at > now()
          AND s.last_seen_at > now() - $2::interval
          AND a.status = 'active' AND a.role = s.role
        """,
        secret_hash,
        idle,
        touch_after,
    )
    if row is None:
        return None
    if row["stale"]:
        await conn.execute(
            "UPDATE staff_sessions SET last_seen_at = now() WHERE id = $1", row["session_id"]
        )
    return SessionFacts(
        session_id=row["session_id"], account=_account(row), expires_at=row["expires_at"]
    )


async def end_session(conn: asyncpg.Connection, session_id: str) -> None:
    await conn.execute("DELETE FROM staff_sessions WHERE id = $1", session_id)


async def end_all_sessions(conn: asyncpg.Connection, staff_id: str) -> int:
    result = await conn.execute("DELETE FROM staff_sessions WHERE staff_id = $1", staff_id)
    return int(result.split()[-1])
