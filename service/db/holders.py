"""SQL for card holders, and the CSV import that writes many of them at once."""

from __future__ import annotations

from collections.abc import Sequence
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
    HolderRow,
    changed_fields,
    check_transition,
    normalise_card_number,
)
from service.domain.ids import new_id, time_ordered_id

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


async def import_holders(
    conn: asyncpg.Connection, rows: Sequence[HolderRow], actor: Principal | None
) -> dict[str, int]:
    """Create or update every holder of a checked import file in one transaction.

    A row whose fields match the stored holder and whose PIN verifies against the
    stored hash is left alone, so importing the same file again changes nothing. The
    PIN work (a verify for every known card, a hash for every new or changed PIN) runs
    on every core before the transaction starts, so no lock is held meanwhile.
    """
    cards = [row.card_number for row in rows]
    before = {
        record["card_number"]: record
        for record in await conn.fetch(
            f"SELECT {_COLUMNS}, pin_hash FROM holders WHERE card_number = ANY($1::text[])", cards
        )
    }
    known = [row for row in rows if row.card_number in before]
    pin_kept = await pins.verify_pins([(before[r.card_number]["pin_hash"], r.pin) for r in known])
    kept_hash = {
        row.card_number: before[row.card_number]["pin_hash"]
        for row, same in zip(known, pin_kept, strict=True)
        if same
    }
    writes = [
        row
        for row in rows
        if row.card_number not in kept_hash or changed_fields(before[row.card_number], row)
    ]
    needing_hash = [row for row in writes if row.card_number not in kept_hash]
    new_hashes = dict(
        zip(
            (row.card_number for row in needing_hash),
            await pins.hash_pins([row.pin for row in needing_hash]),
            strict=True,
        )
    )

    async with conn.transaction():
        created, updated = await _write_import(conn, writes, {**kept_hash, **new_hashes}, actor)
        await audit.record(
            conn,
            actor,
            "holder.import",
            "holder_import",
            f"imp_{time_ordered_id()}",
            {
                "rows": [None, len(rows)],
                "created": [None, created],
                "updated": [None, updated],
            },
        )
    return {"created": created, "updated": updated}


async def _write_import(
    conn: asyncpg.Connection,
    writes: list[HolderRow],
    pin_hash: dict[str, str],
    actor: Principal | None,
) -> tuple[int, int]:
    if not writes:
        return 0, 0
    # Lock what exists (in card order, so two imports cannot deadlock) and read the
    # values an audit event calls "before" inside the transaction.
    current = {
        record["card_number"]: record
        for record in await conn.fetch(
            f"""
            SELECT {_COLUMNS}, pin_hash FROM holders WHERE card_number = ANY($1::text[])
            ORDER BY card_number FOR UPDATE
            """,
            [row.card_number for row in writes],
        )
    }
    fresh = [row for row in writes if row.card_number not in current]
    inserted = await conn.fetch(
        """
        INSERT INTO holders
            (id, card_number, category, display_name, region, valid_until, pin_hash)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::date[], $7::text[])
        ON CONFLICT (card_number) DO NOTHING
        RETURNING id, card_number
        """,
        [new_id("holder") for _ in fresh],
        *_columns(fresh, pin_hash),
    )
    inserted_cards = {record["card_number"] for record in inserted}
    # Card numbers are unique: a card created meanwhile by someone else is updated instead.
    stale = [row for row in writes if row.card_number not in inserted_cards]
    changed = await conn.fetch(
        """
        UPDATE holders AS h
        SET category = u.category, display_name = u.display_name, region = u.region,
            valid_until = u.valid_until, pin_hash = u.pin_hash, updated_at = now(),
            failed_pin_count = CASE WHEN h.pin_hash = u.pin_hash THEN h.failed_pin_count ELSE 0 END,
            failed_pin_window_started_at = CASE WHEN h.pin_hash = u.pin_hash
                THEN h.failed_pin_window_started_at END,
            locked_until = CASE WHEN h.pin_hash = u.pin_hash THEN h.locked_until END
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[])
            AS u (card_number, category, display_name, region, valid_until, pin_hash)
        WHERE h.card_number = u.card_number
        RETURNING h.id, h.card_number
        """,
        *_columns(stale, pin_hash),
    )
    by_card = {row.card_number: row for row in writes}
    for record in inserted:
        row = by_card[record["card_number"]]
        diff = {name: [None, getattr(row, name)] for name in ("card_number", *DATA_FIELDS)}
        diff["status"] = [None, "active"]
        diff["pin"] = [None, PIN_REDACTED]
        await audit.record(
            conn, actor, "holder.create", "holder", record["id"], _audit_values(diff)
        )
    for record in changed:
        row = by_card[record["card_number"]]
        old = current.get(record["card_number"])
        diff = (
            changed_fields(old, row)
            if old
            else {name: [None, getattr(row, name)] for name in DATA_FIELDS}
        )
        if old is None or old["pin_hash"] != pin_hash[row.card_number]:
            diff["pin"] = [PIN_REDACTED, PIN_REDACTED]
        await audit.record(
            conn, actor, "holder.update", "holder", record["id"], _audit_values(diff)
        )
    return len(inserted), len(changed)


def _columns(rows: list[HolderRow], pin_hash: dict[str, str]) -> list[list[Any]]:
    """The rows as one array per column, for unnest()."""
    return [
        [row.card_number for row in rows],
        [row.category for row in rows],
        [row.display_name for row in rows],
        [row.region for row in rows],
        [row.valid_until for row in rows],
        [pin_hash[row.card_number] for row in rows],
    ]
