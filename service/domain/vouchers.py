"""Voucher rules: who may claim, when a voucher expires, what its status is now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.domain.errors import ApiError
from service.domain.language import Said
from service.domain.offers import OfferRules
from service.domain.periods import card_is_valid, end_of_local_day, local_date

#: Days a voucher lives when its offer sets no voucher_valid_days.
DEFAULT_VALID_DAYS = 30


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The facts that decide whether a holder may use an offer right now."""

    holder_status: str
    holder_category: str
    card_valid_until: date
    offer_status: str
    offer_starts_at: datetime | None
    offer_ends_at: datetime | None
    eligible_categories: tuple[str, ...]
    partner_status: str

    @classmethod
    def of(cls, columns: Mapping[str, Any]) -> Eligibility:
        """From a row whose columns are named as these fields (vouchers_db, redemptions_db)."""
        facts = {fact.name: columns[fact.name] for fact in fields(cls)}
        return cls(**{**facts, "eligible_categories": tuple(facts["eligible_categories"])})


def check_holder_active(status: str, valid_until: date, now: datetime, tz: ZoneInfo) -> None:
    """docs/api.md: a suspended or revoked holder, or a card past valid_until, is
    holder_inactive (at sign-in, on every holder request, at claim and at the till)."""
    if status != "active":
        raise ApiError(
            "holder_inactive", Said(f"The card holder is {status}", f"持证人状态为 {status}")
        )
    if not card_is_valid(valid_until, now, tz):
        raise ApiError(
            "holder_inactive", Said("The card is past its valid-until date", "证件已过有效期")
        )


def check_holder(facts: Eligibility, now: datetime, tz: ZoneInfo) -> None:
    """Holder rules, in the documented order (docs/rules.md): active, card valid,
    category eligible."""
    check_holder_active(facts.holder_status, facts.card_valid_until, now, tz)
    if facts.eligible_categories and facts.holder_category not in facts.eligible_categories:
        raise ApiError(
            "holder_ineligible",
            Said(
                "This offer is not open to the card holder's category", "此优惠不面向该持证人的类别"
            ),
        )


def check_offer(facts: Eligibility, now: datetime) -> None:
    """Offer rules: published and inside its window."""
    if facts.offer_status != "active":
        raise ApiError(
            "offer_inactive",
            Said(f"The offer is {facts.offer_status}", f"优惠状态为 {facts.offer_status}"),
        )
    if facts.offer_starts_at is not None and now < facts.offer_starts_at:
        raise ApiError("offer_inactive", Said("The offer has not started yet", "优惠尚未开始"))
    if facts.offer_ends_at is not None and now >= facts.offer_ends_at:
        raise ApiError("offer_inactive", Said("The offer has ended", "优惠已结束"))


def check_claim(facts: Eligibility, now: datetime, tz: ZoneInfo) -> None:
    """May this holder claim a voucher for this offer now?"""
    if facts.partner_status != "active":
        raise ApiError("partner_inactive", Said("The partner is not active", "合作商户未生效"))
    check_holder(facts, now, tz)
    check_offer(facts, now)


def check_usable_now(
    facts: Eligibility,
    voucher_status: str,
    uses_left: int,
    expires_at: datetime,
    now: datetime,
    tz: ZoneInfo,
) -> None:
    """docs/api.md: a voucher that cannot be used now gets no token, QR code or voucher
    code; the holder is told the first rule it breaks, in the till's order (partner,
    voucher, holder, offer), so the wallet and the till name the same reason."""
    if facts.partner_status != "active":
        raise ApiError("partner_inactive", "The partner is not active in the programme")
    status = effective_status(voucher_status, expires_at, now)
    if status == "revoked":
        raise ApiError("voucher_revoked", "The voucher has been revoked")
    if status == "expired":
        raise ApiError("voucher_expired", "The voucher has expired")
    if status == "used_up" or uses_left <= 0:
        raise ApiError("voucher_used_up", "The voucher has no uses left")
    check_holder(facts, now, tz)
    check_offer(facts, now)


def voucher_expiry(
    claimed_at: datetime, valid_days: int | None, offer_ends_at: datetime | None, tz: ZoneInfo
) -> datetime:
    """The earlier of the offer's end and the end of the local day `valid_days` after claiming."""
    days = DEFAULT_VALID_DAYS if valid_days is None else valid_days
    expiry = end_of_local_day(local_date(claimed_at, tz) + timedelta(days=days), tz)
    if offer_ends_at is not None and offer_ends_at < expiry:
        return offer_ends_at
    return expiry


def effective_status(status: str, expires_at: datetime, now: datetime) -> str:
    """An active voucher past its expiry is expired, whether or not a row says so yet."""
    if status == "active" and now >= expires_at:
        return "expired"
    return status


# A voucher as its holder sees it (db/vouchers.py reads it) ---------------------------


@dataclass(frozen=True, slots=True)
class OfferForHolder(OfferRules):
    """An offer as a holder sees it: what it grants and whose it is, never its counters."""

    partner_name: str
    partner_category: str


@dataclass(frozen=True, slots=True)
class HeldVoucher:
    """A holder's voucher with its offer; `status` as stored (see effective_status)."""

    id: str
    offer_id: str
    holder_id: str
    partner_id: str
    status: str
    uses_left: int
    expires_at: datetime
    created_at: datetime
    saved_total: int  # what its redemptions not reversed took off, in fen
    offer: OfferForHolder
