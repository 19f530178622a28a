"""Arranging rows for tests through the service's own SQL modules (never raw fixtures)."""

from __future__ import annotations

import asyncpg

from service.db import keys as keys_db
from service.db import partners as partners_db
from service.domain.auth import Role


async def make_partner(
    db: asyncpg.Connection,
    *,
    name: str = "区邮政分公司",
    category: str = "postal",
    status: str = "active",
) -> str:
    row = await partners_db.create_partner(db, {"name": name, "category": category}, None)
    if status != "pending":
        await partners_db.update_partner(db, row["id"], {"status": "active"}, None)
        if status in ("suspended", "terminated"):
            await partners_db.update_partner(db, row["id"], {"status": "suspended"}, None)
        if status == "terminated":
            await partners_db.update_partner(db, row["id"], {"status": "terminated"}, None)
    return row["id"]


async def make_key(db: asyncpg.Connection, role: Role, partner_id: str | None = None) -> str:
    """A new key's secret."""
    _, secret = await keys_db.create_key(
        db, role=role, partner_id=partner_id, label=f"test {role}", actor=None
    )
    return secret


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
