"""SQL for partners."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.db.rows import update_columns
from service.domain.pagination import PageRequest

#: The public profile (docs/api.md): what the directory shows of a partner.
PROFILE = ("region", "public_phone", "opening_hours", "listed")
_COLUMNS = (
    "id, name, category, contact_name, contact_phone, address, status, created_at, "
    "updated_at, " + ", ".join(PROFILE)
)
#: The columns a PATCH may change (the API's PartnerUpdateSchema names the same).
EDITABLE = ("name", "category", "contact_name", "contact_phone", "address", "status", *PROFILE)


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    name: str
    category: str
    contact_name: str
    contact_phone: str
    address: str
    status: str
    created_at: datetime
    updated_at: datetime
    region: str = ""
    public_phone: str = ""
    opening_hours: str = ""
    listed: bool = True


def _partner(row: asyncpg.Record | None) -> Partner | None:
    return None if row is None else Partner(**row)


async def insert_partner(
    conn: asyncpg.Connection, partner_id: str, fields: dict[str, Any]
) -> Partner:
    row = await conn.fetchrow(
        f"""
        INSERT INTO partners (id, name, category, contact_name, contact_phone, address,
                              region, public_phone, opening_hours, listed)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        RETURNING {_COLUMNS}
        """,
        partner_id,
        fields["name"],
        fields["category"],
        fields.get("contact_name", ""),
        fields.get("contact_phone", ""),
        fields.get("address", ""),
        fields.get("region", ""),
        fields.get("public_phone", ""),
        fields.get("opening_hours", ""),
        fields.get("listed", True),
    )
    return Partner(**row)


async def get_partner(
    conn: asyncpg.Connection, partner_id: str, *, lock: str | None = None
) -> Partner | None:
    """One partner; `lock` "UPDATE" or "SHARE" takes that row lock until the transaction ends."""
    suffix = {None: "", "UPDATE": " FOR UPDATE", "SHARE": " FOR SHARE"}[lock]
    return _partner(
        await conn.fetchrow(f"SELECT {_COLUMNS} FROM partners WHERE id = $1{suffix}", partner_id)
    )


async def list_partners(
    conn: asyncpg.Connection,
    page: PageRequest,
    *,
    status: str | None = None,
    category: str | None = None,
    name_contains: str | None = None,
) -> list[Partner]:
    rows = await conn.fetch(
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
    return [Partner(**row) for row in rows]


async def set_fields(conn: asyncpg.Connection, partner_id: str, values: dict[str, Any]) -> Partner:
    """Write the given editable columns (names from EDITABLE only) and updated_at."""
    return Partner(**await update_columns(conn, "partners", partner_id, values, _COLUMNS))
