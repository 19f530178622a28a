"""The public directory (docs/api.md): where holders can use their card, with each offer's
terms in words (service.domain.terms), written here once for every page that shows them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.db import directory as directory_db
from service.db.directory import ListedPartner
from service.domain.offers import Offer
from service.domain.pagination import Page, PageRequest, page_of
from service.domain.terms import Terms, terms_of_offer


@dataclass(frozen=True, slots=True)
class DirectoryOffer:
    id: str
    title: str
    kind: str
    terms: Terms
    eligible_categories: list[str]
    valid_through: date | None


@dataclass(frozen=True, slots=True)
class DirectoryEntry(ListedPartner):
    """A listed partner with the offers the directory shows of it."""

    offers: list[DirectoryOffer] = field(default_factory=list)


def _entry(partner: ListedPartner, offers: list[Offer], tz: ZoneInfo) -> DirectoryEntry:
    return DirectoryEntry(
        **asdict(partner),
        offers=[
            DirectoryOffer(
                id=offer.id,
                title=offer.title,
                kind=offer.kind,
                terms=terms_of_offer(offer, tz),
                eligible_categories=offer.eligible_categories,
                # The end is exclusive: the last day it may be used is the one before.
                valid_through=(offer.ends_at - timedelta(microseconds=1)).astimezone(tz).date()
                if offer.ends_at is not None
                else None,
            )
            for offer in offers
        ],
    )


async def directory(
    pool: asyncpg.Pool,
    page: PageRequest,
    filters: Mapping[str, Any],
    now: datetime,
    tz: ZoneInfo,
) -> Page[DirectoryEntry]:
    """Active, listed partners that have an offer a holder may use now (of the holder
    category asked for, if any), each with those offers; filters: category, region,
    holder_category, q (part of a partner's name or an offer's title)."""
    holder_category = filters.get("holder_category")
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        partners = await directory_db.listed_partners(
            conn,
            page,
            now,
            category=filters.get("category"),
            region=filters.get("region"),
            holder_category=holder_category,
            q=filters.get("q"),
        )
        shown = partners[: page.limit]
        offers = await directory_db.active_offers(
            conn, [partner.id for partner in shown], now, holder_category
        )
    by_partner: dict[str, list[Offer]] = {}
    for offer in offers:
        by_partner.setdefault(offer.partner_id, []).append(offer)
    listed = page_of(partners, page)
    return Page([_entry(p, by_partner.get(p.id, []), tz) for p in listed.items], listed.next_cursor)
