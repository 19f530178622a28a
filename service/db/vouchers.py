"""SQL for vouchers and for the offers a holder may see."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from typing import cast

import asyncpg

from service.db.offers import open_to_category_sql
from service.domain.ids import new_id
from service.domain.offers import OfferRules
from service.domain.pagination import PageRequest
from service.domain.vouchers import HeldVoucher, OfferForHolder

#: An offer as a holder sees it (name -> SQL over `offers o JOIN partners p`): the offer's
#: rules, column for column, and its partner's name and category.
_OFFER_FOR_HOLDER = {
    **{rule.name: f"o.{rule.name}" for rule in fields(OfferRules)},
    "partner_name": "p.name",
    "partner_category": "p.category",
}
#: Prefix of the offer's columns in a voucher row.
OFFER_PREFIX = "offer_"


def _offer_columns(prefix: str = "") -> str:
    return ", ".join(f"{sql} AS {prefix}{name}" for name, sql in _OFFER_FOR_HOLDER.items())


def _held_voucher(row: asyncpg.Record) -> HeldVoucher:
    own = {name: row[name] for name in _VOUCHER_FIELDS}
    offer = OfferForHolder(**{name: row[OFFER_PREFIX + name] for name in _OFFER_FOR_HOLDER})
    return HeldVoucher(**own, offer=offer)


_VOUCHER_FIELDS = (
    "id", "offer_id", "holder_id", "partner_id", "status", "uses_left", "expires_at",
    "created_at", "saved_total",
)  # fmt: skip
_VOUCHER = (
    "v.id, v.offer_id, v.holder_id, v.partner_id, v.status, v.uses_left, v.expires_at, "
    "v.created_at, " + _offer_columns(OFFER_PREFIX) + ", "
    # What the holder has saved with it: its redemptions that were not reversed.
    "(SELECT coalesce(sum(r.discount_amount), 0) FROM redemptions r WHERE r.voucher_id = v.id "
    "AND NOT EXISTS (SELECT 1 FROM reversals x WHERE x.redemption_id = r.id)) AS saved_total"
)
_VOUCHER_FROM = (
    "vouchers v JOIN offers o ON o.id = v.offer_id JOIN partners p ON p.id = o.partner_id"
)


async def eligibility_facts(
    conn: asyncpg.Connection, holder_id: str, offer_id: str
) -> asyncpg.Record | None:
    """Everything check_claim needs, in one read; None when the offer does not exist."""
    return await conn.fetchrow(
        """
        SELECT h.status AS holder_status, h.category AS holder_category,
               h.valid_until AS card_valid_until,
               o.status AS offer_status, o.starts_at AS offer_starts_at,
               o.ends_at AS offer_ends_at, o.eligible_categories,
               o.voucher_valid_days, o.uses_per_voucher, o.partner_id,
               p.status AS partner_status
        FROM offers o JOIN partners p ON p.id = o.partner_id, holders h
        WHERE o.id = $2 AND h.id = $1
        """,
        holder_id,
        offer_id,
    )


async def active_voucher_for_update(
    conn: asyncpg.Connection, holder_id: str, offer_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """
        SELECT v.id, v.expires_at FROM vouchers v
        WHERE v.holder_id = $1 AND v.offer_id = $2 AND v.status = 'active'
        FOR UPDATE
        """,
        holder_id,
        offer_id,
    )


async def mark_expired(conn: asyncpg.Connection, voucher_id: str) -> None:
    await conn.execute(
        "UPDATE vouchers SET status = 'expired', updated_at = now() "
        "WHERE id = $1 AND status = 'active'",
        voucher_id,
    )


async def insert_voucher(
    conn: asyncpg.Connection,
    *,
    holder_id: str,
    offer_id: str,
    partner_id: str,
    uses: int,
    expires_at: datetime,
    issued_by: str,
) -> str | None:
    """Insert an active voucher; None when a concurrent claim inserted it first."""
    # The partial unique index keeps one active voucher per holder and offer.
    return cast(
        str | None,
        await conn.fetchval(
            """
        INSERT INTO vouchers
            (id, holder_id, offer_id, partner_id, uses_total, uses_left, expires_at, issued_by)
        VALUES ($1, $2, $3, $4, $5, $5, $6, $7)
        ON CONFLICT (holder_id, offer_id) WHERE status = 'active' DO NOTHING
        RETURNING id
        """,
            new_id("voucher"),
            holder_id,
            offer_id,
            partner_id,
            uses,
            expires_at,
            issued_by,
        ),
    )


async def active_voucher_id(conn: asyncpg.Connection, holder_id: str, offer_id: str) -> str | None:
    return cast(
        str | None,
        await conn.fetchval(
            "SELECT id FROM vouchers WHERE holder_id = $1 AND offer_id = $2 AND status = 'active'",
            holder_id,
            offer_id,
        ),
    )


async def get_voucher(
    conn: asyncpg.Connection, voucher_id: str, holder_id: str | None = None
) -> HeldVoucher | None:
    """A voucher with its offer; with `holder_id`, only if it is that holder's."""
    row = await conn.fetchrow(
        f"""
        SELECT {_VOUCHER} FROM {_VOUCHER_FROM}
        WHERE v.id = $1 AND ($2::text IS NULL OR v.holder_id = $2)
        """,
        voucher_id,
        holder_id,
    )
    return None if row is None else _held_voucher(row)


async def list_vouchers(
    conn: asyncpg.Connection, holder_id: str, page: PageRequest, status: str | None
) -> list[HeldVoucher]:
    """A holder's vouchers; `status` filters on the status as the holder sees it."""
    rows = await conn.fetch(
        f"""
        SELECT {_VOUCHER} FROM {_VOUCHER_FROM}
        WHERE v.holder_id = $1 AND ($2::text IS NULL OR v.id > $2)
          AND ($3::text IS NULL OR
               CASE WHEN v.status = 'active' AND v.expires_at <= now() THEN 'expired'
                    ELSE v.status END = $3)
        ORDER BY v.id
        LIMIT $4
        """,
        holder_id,
        page.after_id,
        status,
        page.limit + 1,
    )
    return [_held_voucher(row) for row in rows]


async def offers_open_to(
    conn: asyncpg.Connection, holder_category: str, page: PageRequest
) -> list[OfferForHolder]:
    """Offers a holder of this category could use now: active, in window, partner active."""
    rows = await conn.fetch(
        f"""
        SELECT {_offer_columns()}
        FROM offers o JOIN partners p ON p.id = o.partner_id
        WHERE o.status = 'active' AND p.status = 'active'
          AND (o.starts_at IS NULL OR o.starts_at <= now())
          AND (o.ends_at IS NULL OR o.ends_at > now())
          AND {open_to_category_sql("$1", "o")}
          AND ($2::text IS NULL OR o.id > $2)
        ORDER BY o.id
        LIMIT $3
        """,
        holder_category,
        page.after_id,
        page.limit + 1,
    )
    return [OfferForHolder(**row) for row in rows]


async def unusable_with_live_tokens(
    conn: asyncpg.Connection,
    partner_id: str,
    tokens_alive_after: datetime,
    now: datetime,
    today: date,
) -> list[str]:
    """The ids of the partner's vouchers that can no longer be used (revoked, used up,
    expired, or their holder suspended, revoked or past the card's valid_until `today`)
    whose newest token expires after `tokens_alive_after`: the only ones a till offline
    could still be shown a token of that passes its own check. Newest tokens are read
    from voucher_codes (one row per voucher, replaced at every minting)."""
    rows = await conn.fetch(
        """
        SELECT v.id FROM voucher_codes c
        JOIN vouchers v ON v.id = c.voucher_id
        JOIN holders h ON h.id = v.holder_id
        WHERE c.expires_at > $2 AND v.partner_id = $1
          AND (v.status <> 'active' OR v.uses_left = 0 OR v.expires_at <= $3
               OR h.status <> 'active' OR h.valid_until < $4)
        ORDER BY v.id
        """,
        partner_id,
        tokens_alive_after,
        now,
        today,
    )
    return [row["id"] for row in rows]
