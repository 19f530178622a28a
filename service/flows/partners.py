"""Enrolling and managing partners."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import asyncpg

from service.db import audit as audit_db
from service.db import partners as partners_db
from service.db.partners import EDITABLE, Partner
from service.domain.auth import Principal
from service.domain.errors import ApiError
from service.domain.ids import new_id
from service.domain.language import Said
from service.domain.pagination import Page, PageRequest, page_of
from service.domain.partners import check_region, check_transition
from service.flows.database import Database, connection


async def enrol(
    db: Database,
    actor: Principal | None,
    fields: dict[str, Any],
    *,
    regions: Collection[str] = (),
) -> Partner:
    """A new partner, status pending; its region one of `regions` when there are any."""
    check_region(fields.get("region", ""), regions)
    async with connection(db) as conn, conn.transaction():
        partner = await partners_db.insert_partner(conn, new_id("partner"), fields)
        created = {name: [None, getattr(partner, name)] for name in EDITABLE}
        await audit_db.record(conn, actor, "partner.create", "partner", partner.id, created)
    return partner


async def require(conn: asyncpg.Connection, partner_id: str, *, lock: str | None = None) -> Partner:
    """The partner, or not_found."""
    partner = await partners_db.get_partner(conn, partner_id, lock=lock)
    if partner is None:
        raise ApiError("not_found", Said("No such partner", "没有此合作商户"))
    return partner


async def get(db: Database, caller: Principal, partner_id: str) -> Partner:
    """Rule 5: admins read every partner, a partner caller only its own (others: not_found)."""
    if not caller.can_see_partner(partner_id):
        raise ApiError("not_found", Said("No such partner", "没有此合作商户"))
    async with connection(db) as conn:
        return await require(conn, partner_id)


async def list_page(
    db: Database,
    page: PageRequest,
    *,
    status: str | None = None,
    category: str | None = None,
    name_contains: str | None = None,
) -> Page[Partner]:
    async with connection(db) as conn:
        rows = await partners_db.list_partners(
            conn, page, status=status, category=category, name_contains=name_contains
        )
    return page_of(rows, page)


async def change(
    db: Database,
    actor: Principal | None,
    partner_id: str,
    changes: dict[str, Any],
    *,
    regions: Collection[str] = (),
) -> Partner:
    """Apply a PATCH; the status follows pending → active ⇄ suspended → terminated."""
    check_region(changes.get("region", ""), regions)
    async with connection(db) as conn, conn.transaction():
        # Row lock: two concurrent status changes are judged one after the other.
        current = await require(conn, partner_id, lock="UPDATE")
        if "status" in changes:
            check_transition(current.status, changes["status"])
        diff = {
            name: [getattr(current, name), value]
            for name, value in changes.items()
            if name in EDITABLE and getattr(current, name) != value
        }
        if not diff:
            return current
        partner = await partners_db.set_fields(
            conn, partner_id, {name: after for name, (_, after) in diff.items()}
        )
        action = "partner.status" if set(diff) == {"status"} else "partner.update"
        await audit_db.record(conn, actor, action, "partner", partner_id, diff)
    return partner
