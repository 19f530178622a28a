"""SQL for partner applications (docs/api.md) and the applications sent per client address."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import asyncpg

from service.domain.applications import Application
from service.domain.pagination import PageRequest

#: Any advisory lock key of its own: submissions are judged one at a time against the
#: partners and the open applications (Rule: no duplicate), in every process.
SUBMIT_LOCK = 0x59_41_50_4C  # "YAPL"

_COLUMNS = (
    "id, name, category, contact_name, contact_phone, contact_email, address, region, "
    "public_phone, opening_hours, offer_idea, status, rejection_reason, partner_id, "
    "created_at, decided_at"
)
#: A space of any kind, as Python's str.split() sees the ones a name may hold.
_SPACES = r"[[:space:]\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


async def lock_submissions(conn: asyncpg.Connection) -> None:
    """Until the transaction ends, no other submission is judged."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", SUBMIT_LOCK)


async def oldest_attempt_if_over(
    conn: asyncpg.Connection, address: str, now: datetime, window: timedelta, limit: int
) -> datetime | None:
    """When the oldest attempt of `address` within the window was, if there are `limit`."""
    # docs/api.md: at most `limit` applications from one address within the window.
    return cast(
        datetime | None,
        await conn.fetchval(
            """
        SELECT min(attempted_at) FROM partner_application_attempts
        WHERE address = $1 AND attempted_at > $2::timestamptz - $3::interval
        HAVING count(*) >= $4
        """,
            address,
            now,
            window,
            limit,
        ),
    )


async def record_attempt(
    conn: asyncpg.Connection, address: str, now: datetime, window: timedelta
) -> None:
    """Count one application from `address`, and forget its attempts the window is past."""
    await conn.execute(
        "DELETE FROM partner_application_attempts "
        "WHERE address = $1 AND attempted_at <= $2::timestamptz - $3::interval",
        address,
        now,
        window,
    )
    await conn.execute(
        "INSERT INTO partner_application_attempts (address, attempted_at) VALUES ($1, $2)",
        address,
        now,
    )


async def duplicate_of(conn: asyncpg.Connection, name_key: str, phone_key: str) -> str | None:
    """The id of a partner or an open application of the same name or contact phone."""
    # Rule (docs/api.md): a name or contact phone already a partner's or an open application's.
    return cast(
        str | None,
        await conn.fetchval(
            f"""
        SELECT id FROM partners
        WHERE lower(regexp_replace(name, '{_SPACES}', '', 'g')) = $1
           OR ($2 <> '' AND regexp_replace(contact_phone, '[^0-9]', '', 'g') = $2)
        UNION ALL
        SELECT id FROM partner_applications
        WHERE status = 'submitted' AND (name_key = $1 OR ($2 <> '' AND phone_key = $2))
        LIMIT 1
        """,
            name_key,
            phone_key,
        ),
    )


async def insert(
    conn: asyncpg.Connection,
    application_id: str,
    fields: dict[str, Any],
    *,
    name_key: str,
    phone_key: str,
    token_hash: bytes,
    now: datetime,
) -> Application | None:
    """The new application, or None when an open one has its name or phone already."""
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                INSERT INTO partner_applications
                    (id, name, name_key, category, contact_name, contact_phone, phone_key,
                     contact_email, address, region, public_phone, opening_hours, offer_idea,
                     status_token_hash, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                RETURNING {_COLUMNS}
                """,
                application_id,
                fields["name"],
                name_key,
                fields["category"],
                fields["contact_name"],
                fields["contact_phone"],
                phone_key,
                fields["contact_email"],
                fields["address"],
                fields["region"],
                fields.get("public_phone", ""),
                fields.get("opening_hours", ""),
                fields["offer_idea"],
                token_hash,
                now,
            )
    except asyncpg.UniqueViolationError:
        # The unique indexes of open applications (the advisory lock keeps this rare).
        return None
    return Application(**row)


async def get(
    conn: asyncpg.Connection, application_id: str, *, for_update: bool = False
) -> Application | None:
    suffix = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM partner_applications WHERE id = $1{suffix}", application_id
    )
    return None if row is None else Application(**row)


async def by_status_token(conn: asyncpg.Connection, token_hash: bytes) -> Application | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM partner_applications WHERE status_token_hash = $1", token_hash
    )
    return None if row is None else Application(**row)


async def list_applications(
    conn: asyncpg.Connection, page: PageRequest, *, status: str | None
) -> list[Application]:
    """Newest first (ids are time-ordered)."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM partner_applications
        WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR status = $2)
        ORDER BY id DESC
        LIMIT $3
        """,
        page.after_id,
        status,
        page.limit + 1,
    )
    return [Application(**row) for row in rows]


async def decide(
    conn: asyncpg.Connection,
    application_id: str,
    now: datetime,
    *,
    partner_id: str | None = None,
    rejection_reason: str | None = None,
) -> Application | None:
    """Mark an open application approved (enrolled as `partner_id`) or rejected (with
    its reason); None when it is decided already (or unknown)."""
    approved = partner_id is not None
    assert approved != (rejection_reason is not None), "approve or reject, not both"
    # Rule (docs/api.md): an application is decided once.
    row = await conn.fetchrow(
        f"""
        UPDATE partner_applications
        SET status = $2, partner_id = $3, rejection_reason = $4, decided_at = $5
        WHERE id = $1 AND status = 'submitted'
        RETURNING {_COLUMNS}
        """,
        application_id,
        "approved" if approved else "rejected",
        partner_id,
        rejection_reason,
        now,
    )
    return None if row is None else Application(**row)
