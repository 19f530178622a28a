"""SQL of the public directory: active, listed partners with an offer active now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.db.offers import COLUMNS as OFFER_COLUMNS
from service.domain.offers import Offer
from service.domain.pagination import PageRequest

#: An offer a holder may use at `$now` (and, when `$hc` is given, a holder of that category).
_ACTIVE_OFFER = """
    o.status = 'active'
    AND (o.starts_at IS NULL OR o.starts_at <= $1) AND (o.ends_at IS NULL OR o.ends_at > $1)
    AND ($2::text IS NULL OR o.eligible_categories = '{}' OR $2 = ANY (o.eligible_categories))
"""


@dataclass(frozen=True, slots=True)
class ListedPartner:
    id: str
    name: str
    category: str
    region: str
    address: str
    public_phone: str
    opening_hours: str


async def listed_partners(
    conn: asyncpg.Connection,
    page: PageRequest,
    now: datetime,
    *,
    category: str | None,
    region: str | None,
    holder_category: str | None,
    q: str | None,
) -> list[ListedPartner]:
    rows = await conn.fetch(
        f"""
        SELECT p.id, p.name, p.category, p.region, p.address, p.public_phone, p.opening_hours
        FROM partners p
        WHERE p.status = 'active' AND p.listed
          AND ($3::text IS NULL OR p.id > $3)
          AND ($4::text IS NULL OR p.category = $4)
          AND ($5::text IS NULL OR p.region = $5)
          AND EXISTS (
              SELECT 1 FROM offers o
              WHERE o.partner_id = p.id AND {_ACTIVE_OFFER}
                AND ($6::text IS NULL OR strpos(lower(p.name), lower($6)) > 0
                     OR strpos(lower(o.title), lower($6)) > 0))
        ORDER BY p.id
        LIMIT $7
        """,
        now,
        holder_category,
        page.after_id,
        category,
        region,
        q,
        page.limit + 1,
    )
    return [ListedPartner(**row) for row in rows]


async def active_offers(
    conn: asyncpg.Connection,
    partner_ids: Sequence[str],
    now: datetime,
    holder_category: str | None,
) -> list[Offer]:
    """The offers of these partners a holder may use now, by partner then id."""
    columns = ", ".join(f"o.{name.strip()}" for name in OFFER_COLUMNS.split(","))
    rows = await conn.fetch(
        f"""
        SELECT {columns}
        FROM offers o
        WHERE o.partner_id = ANY ($3::text[]) AND {_ACTIVE_OFFER}
        ORDER BY o.partner_id, o.id
        """,
        now,
        holder_category,
        list(partner_ids),
    )
    return [Offer(**row) for row in rows]
