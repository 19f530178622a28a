"""Arranging rows for tests through the service's own SQL modules (never raw fixtures)."""

from __future__ import annotations

import asyncpg

from service.db import keys as keys_db
from service.db import offers as offers_db
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


async def make_offer(
    db: asyncpg.Connection, partner_id: str, *, status: str = "active", **fields: object
) -> str:
    """A new offer's id: by default percent_off 10 %, active, no window and no limits.

    `fields` are columns (holder_limit as holder_limit_count and holder_limit_period),
    e.g. make_offer(db, pid, kind="amount_off", amount_off=300, budget=10_000).
    """
    values = {"title": "邮政寄递九折", "kind": "percent_off", **fields}
    if values["kind"] == "percent_off":
        values.setdefault("percent_bp", 1000)
    row = await offers_db.create_offer(db, {"partner_id": partner_id, **values}, None)
    for step in {"draft": (), "active": ("active",), "paused": ("active", "paused")}.get(
        status, ("active", status)
    ):
        await offers_db.update_offer(db, row["id"], {"status": step}, None)
    return row["id"]
