"""Offer rules: the four kinds and their fields, the validity window, the status life
cycle, and what may still change once an offer has been redeemed.

An offer is handled here as a plain mapping of its columns (holder_limit flattened into
holder_limit_count and holder_limit_period), so the same rules judge a new offer, a
PATCH and a database row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.domain import messages
from service.domain.errors import ApiError, FieldError, field_errors, validation_error
from service.domain.language import CHINESE, Said
from service.domain.lifecycle import Lifecycle
from service.domain.periods import PERIODS
from service.domain.pricing import KINDS, PriceRule

__all__ = ["KINDS", "PERIODS", "STATUSES"]  # with the rules below, what schemas/offers uses

#: draft → active ⇄ paused → ended, and active → ended; nothing leaves ended.
LIFECYCLE = Lifecycle(
    "An offer",
    {
        "draft": frozenset({"active"}),
        "active": frozenset({"paused", "ended"}),
        "paused": frozenset({"active", "ended"}),
        "ended": frozenset(),
    },
)
STATUSES = LIFECYCLE.statuses
check_transition = LIFECYCLE.check

#: The fields each kind uses; the first one is required.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "percent_off": ("percent_bp", "max_discount"),
    "amount_off": ("amount_off",),
    "fixed_price": ("fixed_price",),
    "service": ("nominal_value",),
}
ALL_KIND_FIELDS = ("percent_bp", "max_discount", "amount_off", "fixed_price", "nominal_value")

#: Fields that say what a redemption was worth: frozen once the offer has one.
PRICING_FIELDS = ("kind", *ALL_KIND_FIELDS, "min_purchase")

#: Columns the API may set (partner_id is fixed at creation).
EDITABLE = (
    "title",
    "description",
    "kind",
    *ALL_KIND_FIELDS,
    "min_purchase",
    "starts_at",
    "ends_at",
    "eligible_categories",
    "uses_per_voucher",
    "holder_limit_count",
    "holder_limit_period",
    "total_redemptions",
    "budget",
    "voucher_valid_days",
    "status",
)

#: A longer period with the same count is the stricter limit.
_PERIOD_LENGTH = {period: rank for rank, period in enumerate(PERIODS)}


def check_kind_fields(offer: Mapping[str, Any]) -> None:
    """The kind's required field is set and no field of another kind is (422, naming each)."""
    kind = offer["kind"]
    own = KIND_FIELDS[kind]
    errors = [
        FieldError(name, Said(f"not used by {kind} offers", f"{kind} 类优惠不使用此字段"))
        for name in ALL_KIND_FIELDS
        if name not in own and offer.get(name) is not None
    ]
    if offer.get(own[0]) is None:
        errors.append(
            FieldError(own[0], Said(f"required for {kind} offers", f"{kind} 类优惠必须填写"))
        )
    if errors:
        raise field_errors(errors)


def check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise validation_error("ends_at", Said("must be after starts_at", "必须晚于 starts_at"))


def check_new_offer(offer: Mapping[str, Any]) -> None:
    """Every rule a new offer must meet beyond its schema."""
    check_kind_fields(offer)
    check_window(offer.get("starts_at"), offer.get("ends_at"))


def check_partner_accepts_offers(partner_status: str) -> None:
    """A terminated partner gets no new or re-published offers."""
    if partner_status == "terminated":
        raise ApiError("conflict", Said("The partner is terminated", "合作商户已终止"))


def apply_changes(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The offer's editable fields after `changes`.

    When the kind changes, the old kind's fields that the change does not mention are
    cleared, so `{"kind": "amount_off", "amount_off": 500}` is enough to switch.
    """
    offer = {name: current[name] for name in EDITABLE}
    if changes.get("kind", current["kind"]) != current["kind"]:
        for name in KIND_FIELDS[current["kind"]]:
            offer[name] = None
    offer.update((name, value) for name, value in changes.items() if name in EDITABLE)
    return offer


def plan_update(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Judge a PATCH against the current offer; answer the changed fields as [before, after].

    Raises validation_error (422) for an offer that would be malformed and conflict (409)
    for a status move or a change the life cycle or past redemptions forbid.
    """
    offer = apply_changes(current, changes)
    check_kind_fields(offer)
    check_window(offer["starts_at"], offer["ends_at"])
    check_transition(current["status"], offer["status"])
    if current["redeemed_count"] > 0:
        check_change_after_redemption(current, offer)
    return {name: [current[name], offer[name]] for name in EDITABLE if current[name] != offer[name]}


def _lowered(before: int | None, after: int | None) -> bool:
    """A limit set, or set lower than it was (None: no limit). Only such a change is
    judged against the counters: an offline conflict may have taken them past the limit
    already (docs/rules.md), and that must not forbid every other change of the offer."""
    return after is not None and (before is None or after < before)


def check_change_after_redemption(current: Mapping[str, Any], offer: Mapping[str, Any]) -> None:
    """Once redeemed, nothing may change what a past redemption meant (409 conflict)."""
    errors = _changes_refused_after_redemption(current, offer)
    if errors:
        detail = Said(
            "The offer has redemptions: "
            + "; ".join(f"{error.field} {error.message}" for error in errors),
            "优惠已有核销："
            + "；".join(
                f"{error.field} {messages.field_message(error.message, CHINESE)}"
                for error in errors
            ),
        )
        raise ApiError("conflict", detail, errors=errors)


def _changes_refused_after_redemption(
    current: Mapping[str, Any], offer: Mapping[str, Any]
) -> list[FieldError]:
    """Pricing is frozen; the window may only grow; total_redemptions and budget may go
    down no further than what is already used; uses_per_voucher and the per-holder
    limit, whose use is counted per voucher and per holder, may only be loosened."""
    frozen = Said("cannot change once the offer has redemptions", "优惠已有核销后不能修改")
    errors = [FieldError(name, frozen) for name in PRICING_FIELDS if offer[name] != current[name]]
    if _starts_later(current["starts_at"], offer["starts_at"]):
        errors.append(
            FieldError(
                "starts_at", Said("can only move earlier once redeemed", "已有核销后只能提前")
            )
        )
    if _ends_earlier(current["ends_at"], offer["ends_at"]):
        errors.append(
            FieldError("ends_at", Said("can only move later once redeemed", "已有核销后只能推后"))
        )
    used, spent = current["redeemed_count"], current["spent"]
    total, budget = offer["total_redemptions"], offer["budget"]
    if _lowered(current["total_redemptions"], total) and total < used:
        errors.append(
            FieldError(
                "total_redemptions",
                Said(f"cannot go below the {used} already redeemed", f"不能低于已核销的 {used} 次"),
            )
        )
    if _lowered(current["budget"], budget) and budget < spent:
        errors.append(
            FieldError(
                "budget",
                Said(f"cannot go below the {spent} already spent", f"不能低于已花费的 {spent}"),
            )
        )
    if offer["uses_per_voucher"] < current["uses_per_voucher"]:
        errors.append(
            FieldError(
                "uses_per_voucher", Said("can only be raised once redeemed", "已有核销后只能提高")
            )
        )
    if not _holder_limit_loosened(current, offer):
        errors.append(
            FieldError(
                "holder_limit", Said("can only be loosened once redeemed", "已有核销后只能放宽")
            )
        )
    return errors


def _starts_later(before: datetime | None, after: datetime | None) -> bool:
    """Whether the window now opens later (no start means open since always)."""
    return after is not None and (before is None or after > before)


def _ends_earlier(before: datetime | None, after: datetime | None) -> bool:
    """Whether the window now closes earlier (no end means open for ever)."""
    return after is not None and (before is None or after < before)


def _holder_limit_loosened(current: Mapping[str, Any], offer: Mapping[str, Any]) -> bool:
    """Same or looser: removed, or a count no lower over a period no longer."""
    if offer["holder_limit_count"] is None:
        return True
    if current["holder_limit_count"] is None:
        return False
    return (
        offer["holder_limit_count"] >= current["holder_limit_count"]
        and _PERIOD_LENGTH[offer["holder_limit_period"]]
        <= _PERIOD_LENGTH[current["holder_limit_period"]]
    )


@dataclass(frozen=True, slots=True)
class OfferRules:
    """What an offer grants, from what purchase, when and to whom: what every view of an
    offer holds (its terms in words are made of these, service.domain.terms)."""

    id: str
    partner_id: str
    title: str
    description: str
    kind: str
    percent_bp: int | None
    max_discount: int | None
    amount_off: int | None
    fixed_price: int | None
    nominal_value: int | None
    min_purchase: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    eligible_categories: list[str]
    uses_per_voucher: int
    holder_limit_count: int | None
    holder_limit_period: str | None

    @property
    def price_rule(self) -> PriceRule:
        """What the offer takes off a purchase: its PRICING_FIELDS, as pricing reads them."""
        return PriceRule(**{name: getattr(self, name) for name in PRICING_FIELDS})


@dataclass(frozen=True, slots=True)
class Offer(OfferRules):
    """An offer as stored, with its limits and counters (redeemed_count, spent)."""

    total_redemptions: int | None
    budget: int | None
    voucher_valid_days: int | None
    status: str
    redeemed_count: int
    spent: int
    created_at: datetime
    updated_at: datetime
