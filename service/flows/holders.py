"""Enrolling, finding and changing card holders (their CSV import: holder_imports)."""

from __future__ import annotations

from datetime import date
from typing import Any

from service.db import audit as audit_db
from service.db import holders as holders_db
from service.db.holders import Holder
from service.domain import pins
from service.domain.auth import Principal
from service.domain.errors import ApiError
from service.domain.holders import DATA_FIELDS, check_transition, normalise_card_number
from service.domain.ids import new_id
from service.domain.language import Said
from service.domain.pagination import Page, PageRequest, page_of
from service.flows.database import Database, connection

#: Shown in audit events instead of a PIN or its hash: "the PIN was set or changed".
PIN_REDACTED = "***"


def _audit_values(diff: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        name: [v.isoformat() if isinstance(v, date) else v for v in pair]
        for name, pair in diff.items()
    }


async def enrol(db: Database, actor: Principal | None, fields: dict[str, Any]) -> Holder:
    """A new active holder; the PIN is stored as an argon2id hash, a card number already
    enrolled is conflict."""
    pin_hash = await pins.hash_pin_off_loop(fields["pin"])
    async with connection(db) as conn, conn.transaction():
        holder = await holders_db.insert_holder(conn, new_id("holder"), fields, pin_hash)
        if holder is None:
            raise ApiError(
                "conflict",
                Said(
                    f"A holder with card number {fields['card_number']} exists",
                    f"已有卡号为 {fields['card_number']} 的持证人",
                ),
            )
        created = {
            name: [None, getattr(holder, name)] for name in ("card_number", *DATA_FIELDS, "status")
        }
        created["pin"] = [None, PIN_REDACTED]
        await audit_db.record(
            conn, actor, "holder.create", "holder", holder.id, _audit_values(created)
        )
    return holder


async def get(db: Database, holder_id: str) -> Holder:
    async with connection(db) as conn:
        holder = await holders_db.get_holder(conn, holder_id)
    if holder is None:
        raise ApiError("not_found", Said("No such holder", "没有此持证人"))
    return holder


async def find(
    db: Database,
    page: PageRequest,
    *,
    category: str | None = None,
    status: str | None = None,
    region: str | None = None,
    q: str | None = None,
) -> Page[Holder]:
    """`q` matches a card number by its beginning (or whole) or the name by any part."""
    async with connection(db) as conn:
        rows = await holders_db.list_holders(
            conn,
            page,
            category=category,
            status=status,
            region=region,
            name_contains=q,
            card_number_prefix=normalise_card_number(q) if q is not None else None,
        )
    return page_of(rows, page)


async def change(
    db: Database, actor: Principal | None, holder_id: str, changes: dict[str, Any]
) -> Holder:
    """Status follows active ⇄ suspended, either → revoked; revoking makes every
    outstanding voucher of the holder unusable at once. A new PIN clears a lockout."""
    new_pin_hash = await pins.hash_pin_off_loop(changes["pin"]) if "pin" in changes else None
    async with connection(db) as conn, conn.transaction():
        # Row lock: two concurrent status changes are judged one after the other.
        current = await holders_db.get_holder(conn, holder_id, for_update=True)
        if current is None:
            raise ApiError("not_found", Said("No such holder", "没有此持证人"))
        if "status" in changes:
            check_transition(current.status, changes["status"])
        diff = {
            name: [getattr(current, name), value]
            for name, value in changes.items()
            if name in (*DATA_FIELDS, "status") and getattr(current, name) != value
        }
        if not diff and new_pin_hash is None:
            return current
        holder = await holders_db.set_fields(
            conn, holder_id, {name: after for name, (_, after) in diff.items()}, new_pin_hash
        )
        if new_pin_hash is not None:
            diff["pin"] = [PIN_REDACTED, PIN_REDACTED]
        if diff.get("status", [None, None])[1] == "revoked":
            await holders_db.revoke_active_vouchers(conn, holder_id)
        action = "holder.status" if set(diff) == {"status"} else "holder.update"
        await audit_db.record(conn, actor, action, "holder", holder_id, _audit_values(diff))
    return holder
