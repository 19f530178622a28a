"""SQL for offers. The counters redeemed_count and spent belong to redemption."""

from __future__ import annotations

from typing import Any

import asyncpg

from service.db.rows import update_columns
from service.domain.offers import Offer
from service.domain.pagination import PageRequest

#: Every column of an offer, as `Offer` holds them (other modules read offers with it).
COLUMNS = (
    "id, partner_id, title, description, kind, percent_bp, max_discount, amount_off, "
    "fixed_price, nominal_value, min_purchase, starts_at, ends_at, eligible_categories, "
    "uses_per_voucher, holder_limit_count, holder_limit_period, total_redemptions, budget, "
    "voucher_valid_days, status, redeemed_count, spent, created_at, updated_at"
)


def _offer(row: asyncpg.Record | None) -> Offer | None:
    return None if row is None else Offer(**row)


async def insert_offer(conn: asyncpg.Connection, offer_id: str, values: dict[str, Any]) -> Offer:
    """Insert a draft offer; `values` are its columns (partner_id and the editable ones)."""
    placeholders = ", ".join(f"${i}" for i in range(2, len(values) + 2))
    row = await conn.fetchrow(
        f"""
        INSERT INTO offers (id, {", ".join(values)})
        VALUES ($1, {placeholders})
        RETURNING {COLUMNS}
        """,
        offer_id,
        *values.values(),
    )
    return Offer(**row)


async def get_offer(
    conn: asyncpg.Connection, offer_id: str, *, for_update: bool = False
) -> Offer | None:
    """One offer; `for_update` holds its row lock until the transaction ends."""
    lock = " FOR UPDATE" if for_update else ""
    return _offer(
        await conn.fetchrow(f"SELECT {COLUMNS} FROM offers WHERE id = $1{lock}", offer_id)
    )


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
) -> list[Offer]:
    """One page by id; `open_to_category`: offers holders of that category may use."""
    rows = await conn.fetch(
        f"""
        SELECT {COLUMNS} FROM offers
        WHERE ($1::text IS NULL OR id > $1)
          AND ($2::text IS NULL OR status = $2)
          AND ($3::text IS NULL OR partner_id = $3)
          AND ($4::text IS NULL OR strpos(lower(title), lower($4)) > 0)
          AND ($6::text IS NULL OR {open_to_category_sql("$6")})
        ORDER BY id
        LIMIT $5
        """,
        page.after_id,
        status,
        partner_id,
        title_contains,
        page.limit + 1,
        open_to_category,
    )
    return [Offer(**row) for row in rows]


async def set_fields(conn: asyncpg.Connection, offer_id: str, values: dict[str, Any]) -> Offer:
    """Write the given editable columns and updated_at."""
    return Offer(**await update_columns(conn, "offers", offer_id, values, COLUMNS))


async def active_offers(conn: asyncpg.Connection, partner_id: str) -> list[Offer]:
    """Every active offer of an active partner, by id (a till's pack, docs/api.md)."""
    rows = await conn.fetch(
        f"""
        SELECT {COLUMNS} FROM offers o
        WHERE o.partner_id = $1 AND o.status = 'active'
          AND EXISTS (SELECT 1 FROM partners p WHERE p.id = $1 AND p.status = 'active')
        ORDER BY o.id
        """,
        partner_id,
    )
    return [Offer(**row) for row in rows]
