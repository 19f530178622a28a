"""SQL for card holders (their CSV import: holder_imports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from service.db.rows import update_columns
from service.domain.pagination import PageRequest

_COLUMNS = (
    "id, card_number, category, display_name, region, valid_until, status, created_at, updated_at"
)

#: A new PIN starts the sign-in lockout afresh (an admin resetting a PIN unlocks the card).
_NEW_PIN = "failed_pin_count = 0, failed_pin_window_started_at = NULL, locked_until = NULL"


@dataclass(frozen=True, slots=True)
class Holder:
    id: str
    card_number: str
    category: str
    display_name: str
    region: str
    valid_until: date
    status: str
    created_at: datetime
    updated_at: datetime


def _holder(row: asyncpg.Record | None) -> Holder | None:
    return None if row is None else Holder(**row)


async def insert_holder(
    conn: asyncpg.Connection, holder_id: str, fields: dict[str, Any], pin_hash: str
) -> Holder | None:
    """The new holder, or None when the card number is enrolled already."""
    return _holder(
        await conn.fetchrow(
            f"""
            INSERT INTO holders
                (id, card_number, category, display_name, region, valid_until, pin_hash)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (card_number) DO NOTHING
            RETURNING {_COLUMNS}
            """,
            holder_id,
            fields["card_number"],
            fields["category"],
            fields["display_name"],
            fields.get("region", ""),
            fields["valid_until"],
            pin_hash,
        )
    )


async def get_holder(
    conn: asyncpg.Connection, holder_id: str, *, for_update: bool = False
) -> Holder | None:
    """One holder; `for_update` holds its row lock until the transaction ends."""
    lock = " FOR UPDATE" if for_update else ""
    return _holder(
        await conn.fetchrow(f"SELECT {_COLUMNS} FROM holders WHERE id = $1{lock}", holder_id)
    )


async def list_holders(
    conn: asyncpg.Connection,
    page: PageRequest,
    *,
    category: str | None = None,
    status: str | None = None,
    region: str | None = None,
    name_contains: str | None = None,
    card_number_prefix: str | None = None,
) -> list[Holder]:
    """One page by id; a holder matches when its card number starts with
    `card_number_prefix` or its name contains `name_contains` (given together)."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM holders
        WHERE ($1::text IS NULL OR id > $1)
          AND ($2::text IS NULL OR category = $2)
          AND ($3::text IS NULL OR status = $3)
          AND ($4::text IS NULL OR region = $4)
          AND ($5::text IS NULL
               OR starts_with(card_number, $6)
               OR strpos(lower(display_name), lower($5)) > 0)
        ORDER BY id
        LIMIT $7
        """,
        page.after_id,
        category,
        status,
        region,
        name_contains,
        card_number_prefix,
        page.limit + 1,
    )
    return [Holder(**row) for row in rows]


async def set_fields(
    conn: asyncpg.Connection, holder_id: str, values: dict[str, Any], pin_hash: str | None
) -> Holder:
    """Write the given data columns and, when given, a new PIN hash (which also clears
    the card's sign-in lockout)."""
    also = ""
    if pin_hash is not None:
        values, also = {**values, "pin_hash": pin_hash}, _NEW_PIN
    row = await update_columns(conn, "holders", holder_id, values, _COLUMNS, also=also)
    return Holder(**row)


async def revoke_active_vouchers(conn: asyncpg.Connection, holder_id: str) -> None:
    await conn.execute(
        "UPDATE vouchers SET status = 'revoked', updated_at = now() "
        "WHERE holder_id = $1 AND status = 'active'",
        holder_id,
    )
