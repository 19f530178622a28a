"""SQL for card holders (their CSV import: holder_imports)."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from service.db import audit
from service.db.pagination import PageRequest
from service.domain import pins
from service.domain.auth import Principal
from service.domain.errors import ApiError
from service.domain.holders import (
    DATA_FIELDS,
    check_transition,
    normalise_card_number,
)
from service.domain.ids import new_id

_COLUMNS = (
    "id, card_number, category, display_name, region, valid_until, status, created_at, updated_at"
)
#: Shown in audit events instead of a PIN or its hash: "the PIN was set or changed".
PIN_REDACTED = "***"

#: A new PIN starts the sign-in lockout afresh (an admin resetting a PIN unlocks the card).
_NEW_PIN = "failed_pin_count = 0, failed_pin_window_started_at = NULL, locked_until = NULL"


def _audit_values(diff: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        name: [v.isoformat() if isinstance(v, date) else v for v in pair]
        for name, pair in diff.items()
    }


async def create_holder(
    conn: asyncpg.Connection, fields: dict[str, Any], actor: Principal | None
) -> asyncpg.Record:
    pin_hash = await pins.hash_pin_off_loop(fields["pin"])
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""
                INSERT INTO holders
                    (id, card_number, category, display_name, region, valid_until, pin_hash)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                RETURNING {_COLUMNS}
                """,
                new_id("holder"),
                fields["card_number"],
                fields["category"],
                fields["display_name"],
                fields.get("region", ""),
                fields["valid_until"],
                pin_hash,
            )
            created = {name: [None, row[name]] for name in ("card_number", *DATA_FIELDS, "status")}
            created["pin"] = [None, PIN_REDACTED]
            await audit.record(
                conn, actor, "holder.create", "holder", row["id"], _audit_values(created)
            )
    except asyncpg.UniqueViolationError:
        # Card numbers are unique (holders_card_number_key).
        raise ApiError(
            "conflict", f"A holder with card number {fields['card_number']} exists"
        ) from None
    return row


async def get_holder(conn: asyncpg.Connection, holder_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM holders WHERE id = $1", holder_id)


async def list_holders(
    conn: asyncpg.Connection,
    page: PageRequest,
    *,
    category: str | None = None,
    status: str | None = None,
    region: str | None = None,
    q: str | None = None,
) -> list[asyncpg.Record]:
    """`q` matches a card number by its beginning (or whole) or the name by any part."""
    return await conn.fetch(
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
        q,
        normalise_card_number(q) if q is not None else None,
        page.limit + 1,
    )


async def update_holder(
    conn: asyncpg.Connection, holder_id: str, changes: dict[str, Any], actor: Principal | None
) -> asyncpg.Record | None:
    new_pin_hash = await pins.hash_pin_off_loop(changes["pin"]) if "pin" in changes else None
    async with conn.transaction():
        # Row lock: two concurrent status changes are judged one after the other.
        current = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM holders WHERE id = $1 FOR UPDATE", holder_id
        )
        if current is None:
            return None
        if "status" in changes:
            check_transition(current["status"], changes["status"])
        diff = {
            name: [current[name], value]
            for name, value in changes.items()
            if name in (*DATA_FIELDS, "status") and current[name] != value
        }
        if not diff and new_pin_hash is None:
            return current
        assignments = [f"{name} = ${i}" for i, name in enumerate(diff, start=2)]
        values = [diff[name][1] for name in diff]
        if new_pin_hash is not None:
            assignments.append(f"pin_hash = ${len(values) + 2}, {_NEW_PIN}")
            values.append(new_pin_hash)
            diff["pin"] = [PIN_REDACTED, PIN_REDACTED]
        row = await conn.fetchrow(
            f"UPDATE holders SET {', '.join(assignments)}, updated_at = now() WHERE id = $1 "
            f"RETURNING {_COLUMNS}",
            holder_id,
            *values,
        )
        if diff.get("status", [None, None])[1] == "revoked":
            # Revoking a holder makes every outstanding voucher of theirs unusable at once.
            await conn.execute(
                "UPDATE vouchers SET status = 'revoked', updated_at = now() "
                "WHERE holder_id = $1 AND status = 'active'",
                holder_id,
            )
        action = "holder.status" if set(diff) == {"status"} else "holder.update"
        await audit.record(conn, actor, action, "holder", holder_id, _audit_values(diff))
    return row
