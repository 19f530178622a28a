"""SQL for partners."""

from __future__ import annotations

from typing import Any

import asyncpg

from service.db import audit
from service.db.pagination import PageRequest
from service.domain.auth import Principal
from service.domain.errors import ApiError
from service.domain.ids import new_id
from service.domain.partners import check_transition

_COLUMNS = (
    "id, name, category, contact_name, contact_phone, address, status, created_at, updated_at"
)
_EDITABLE = ("name", "category", "contact_name", "contact_phone", "address", "status")


async def create_partner(
    conn: asyncpg.Connection, fields: dict[str, Any], actor: Principal | None
) -> asyncpg.Record:
    async with conn.transaction():
        row = await conn.fetchrow(
            f"""
            INSERT INTO partners (id, name, category, contact_name, contact_phone, address)
            VALUES ($1, $2, $3, $4, $5, $6)
            RETURNING {_COLUMNS}
            """,
            new_id("partner"),
            fields["name"],
            fields["category"],
            fields.get("contact_name", ""),
            fields.get("contact_phone", ""),
            fields.get("address", ""),
        )
        await audit.record(
            conn,
            actor,
            "partner.create",
            "partner",
            row["id"],
            {name: [None, row[name]] for name in _EDITABLE},
        )
    return row


async def get_partner(conn: asyncpg.Connection, partner_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM partners WHERE id = $1", partner_id)


async def list_partners(
    conn: asyncpg.Connection,
    page: PageRequest,
    *,
    status: str | None = None,
    category: str | None = None,
    name_contains: str | None = None,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM partners
        WHERE ($1::text IS NULL OR id > $1)
          AND ($2::text IS NULL OR status = $2)
          AND ($3::text IS NULL OR category = $3)
          AND ($4::text IS NULL OR strpos(lower(name), lower($4)) > 0)
        ORDER BY id
        LIMIT $5
        """,
        page.after_id,
        status,
        category,
        name_contains,
        page.limit + 1,
    )


async def update_partner(
    conn: asyncpg.Connection, partner_id: str, changes: dict[str, Any], actor: Principal | None
) -> asyncpg.Record | None:
    async with conn.transaction():
        # Row lock: two concurrent status changes are judged one after the other.
        current = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM partners WHERE id = $1 FOR UPDATE", partner_id
        )
        if current is None:
            return None
        if "status" in changes:
            check_transition(current["status"], changes["status"])
        diff = {
            name: [current[name], value]
            for name, value in changes.items()
            if name in _EDITABLE and current[name] != value
        }
        if not diff:
            return current
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(diff, start=2))
        row = await conn.fetchrow(
            f"UPDATE partners SET {assignments}, updated_at = now() WHERE id = $1 "
            f"RETURNING {_COLUMNS}",
            partner_id,
            *(diff[name][1] for name in diff),
        )
        action = "partner.status" if set(diff) == {"status"} else "partner.update"
        await audit.record(conn, actor, action, "partner", partner_id, diff)
    return row


async def require_partner(conn: asyncpg.Connection, partner_id: str) -> asyncpg.Record:
    row = await get_partner(conn, partner_id)
    if row is None:
        raise ApiError("not_found", "No such partner")
    return row
