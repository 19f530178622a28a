"""SQL for offers. The counters redeemed_count and spent belong to redemption."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from service.db import audit
from service.db.pagination import PageRequest
from service.domain.auth import Principal
from service.domain.errors import ApiError
from service.domain.ids import new_id
from service.domain.offers import EDITABLE, check_partner_accepts_offers, plan_update

_COLUMNS = (
    "id, partner_id, title, description, kind, percent_bp, max_discount, amount_off, "
    "fixed_price, nominal_value, min_purchase, starts_at, ends_at, eligible_categories, "
    "uses_per_voucher, holder_limit_count, holder_limit_period, total_redemptions, budget, "
    "voucher_valid_days, status, redeemed_count, spent, created_at, updated_at"
)
#: Set from the create body; status always starts as draft.
_CREATED = tuple(name for name in EDITABLE if name != "status")


def _json_safe(value: Any) -> Any:
    """Audit changes are JSON: moments as RFC 3339 text."""
    return value.isoformat() if isinstance(value, datetime) else value


async def create_offer(
    conn: asyncpg.Connection, fields: dict[str, Any], actor: Principal | None
) -> asyncpg.Record:
    """Insert a draft offer for fields["partner_id"] (already checked by the domain rules)."""
    async with conn.transaction():
        # An offer needs a partner that is not terminated; the share lock keeps it so
        # until this transaction ends.
        partner_status = await conn.fetchval(
            "SELECT status FROM partners WHERE id = $1 FOR SHARE", fields["partner_id"]
        )
        if partner_status is None:
            raise ApiError("not_found", "No such partner")
        check_partner_accepts_offers(partner_status)
        values = {name: fields.get(name) for name in _CREATED}
        values["description"] = values["description"] or ""
        values["eligible_categories"] = values["eligible_categories"] or []
        values["uses_per_voucher"] = values["uses_per_voucher"] or 1
        placeholders = ", ".join(f"${i}" for i in range(3, len(_CREATED) + 3))
        row = await conn.fetchrow(
            f"""
            INSERT INTO offers (id, partner_id, {", ".join(_CREATED)})
            VALUES ($1, $2, {placeholders})
            RETURNING {_COLUMNS}
            """,
            new_id("offer"),
            fields["partner_id"],
            *values.values(),
        )
        await audit.record(
            conn,
            actor,
            "offer.create",
            "offer",
            row["id"],
            {
                name: [None, _json_safe(row[name])]
                for name in ("partner_id", *EDITABLE)
                if row[name] is not None
            },
        )
    return row


async def get_offer(conn: asyncpg.Connection, offer_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM offers WHERE id = $1", offer_id)


def open_to_category_sql(category: str, offers: str = "offers") -> str:
    """SQL: the row `offers` may be used by holders of the category `category` (a
    parameter such as $1); an empty eligible_categories opens an offer to all."""
    return (
        f"(cardinality({offers}.eligible_categories) = 0"
        f" OR {category} = ANY ({offers}.eligible_categories))"
    )


async def list_offers(
    conn: asyncpg.Connection,
    page: PageRequest,
    *,
    status: str | None = None,
    partner_id: str | None = None,
    title_contains: str | None = None,
    open_to_category: str | None = None,
    only_partner_id: str | None = None,
) -> list[asyncpg.Record]:
    """One page by id; `only_partner_id` confines a partner key to its own (rule 5);
    `open_to_category`: offers that holders of that category may use."""
    return await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM offers
        WHERE ($1::text IS NULL OR id > $1)
          AND ($2::text IS NULL OR status = $2)
          AND ($3::text IS NULL OR partner_id = $3)
          AND ($4::text IS NULL OR strpos(lower(title), lower($4)) > 0)
          AND ($5::text IS NULL OR partner_id = $5)
          AND ($7::text IS NULL OR {open_to_category_sql("$7")})
        ORDER BY id
        LIMIT $6
        """,
        page.after_id,
        status,
        partner_id,
        title_contains,
        only_partner_id,
        page.limit + 1,
        open_to_category,
    )


async def update_offer(
    conn: asyncpg.Connection,
    offer_id: str,
    changes: dict[str, Any],
    actor: Principal | None,
    *,
    only_partner_id: str | None = None,
) -> asyncpg.Record | None:
    """Apply a PATCH under the offer's row lock; None when there is no such offer
    (or it belongs to another partner than `only_partner_id`)."""
    async with conn.transaction():
        # Row lock: edits and redemptions of one offer are judged one after the other,
        # so the "once redeemed" rules see the counters as they are.
        current = await conn.fetchrow(
            f"""
            SELECT {", ".join(f"o.{name}" for name in _COLUMNS.split(", "))},
                   p.status AS partner_status
            FROM offers o JOIN partners p ON p.id = o.partner_id
            WHERE o.id = $1 AND ($2::text IS NULL OR o.partner_id = $2)
            FOR UPDATE OF o
            """,
            offer_id,
            only_partner_id,
        )
        if current is None:
            return None
        diff = plan_update(current, changes)
        if not diff:
            return current
        if "status" in diff and diff["status"][1] == "active":
            check_partner_accepts_offers(current["partner_status"])
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(diff, start=2))
        row = await conn.fetchrow(
            f"UPDATE offers SET {assignments}, updated_at = now() WHERE id = $1 "
            f"RETURNING {_COLUMNS}",
            offer_id,
            *(after for _, after in diff.values()),
        )
        action = "offer.status" if set(diff) == {"status"} else "offer.update"
        await audit.record(
            conn,
            actor,
            action,
            "offer",
            offer_id,
            {name: [_json_safe(value) for value in pair] for name, pair in diff.items()},
        )
    return row
