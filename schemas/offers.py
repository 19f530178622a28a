"""Offers: what a partner grants card holders (SPEC 2 and 4.2).

Which fields a kind needs is a domain rule (service.domain.offers), checked after
these schemas have checked types and ranges, so each error names its field.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, pre_dump, validate

from schemas.common import (
    Money,
    OneOf,
    PageQuerySchema,
    StrictInteger,
    StrictSchema,
    currency_field,
    page_schema,
)
from service.domain.categories import HOLDER_CATEGORIES
from service.domain.offers import KINDS, PERIODS, STATUSES

#: Offer windows are accepted within these years: far beyond any programme, far from overflow.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _within_range(value: datetime) -> None:
    if not _EARLIEST <= value < _LATEST:
        raise ValidationError("must be between 2000 and 2199")


#: Titles are one line of text; PostgreSQL text cannot hold NUL at all.
_ONE_LINE = validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="must not contain control characters")
_NO_NUL = validate.Regexp(r"^[^\x00]*$", error="must not contain NUL characters")


def _title(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=1, max=200), _ONE_LINE],
        metadata={"example": "邮政寄递九折"},
        **kwargs,
    )


def _description(**kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(max=2000), _NO_NUL], **kwargs)


def _no_duplicates(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("lists a category twice")


def _moment(description: str) -> fields.AwareDateTime:
    return fields.AwareDateTime(
        format="iso",
        allow_none=True,
        validate=_within_range,
        metadata={
            "description": description + " RFC 3339 with an offset; null leaves it open.",
            "example": "2026-01-01T00:00:00+08:00",
        },
    )


def _limit(maximum: int, description: str, **kwargs: Any) -> StrictInteger:
    return StrictInteger(
        validate=validate.Range(min=1, max=maximum),
        metadata={"description": description},
        **kwargs,
    )


class HolderLimitSchema(StrictSchema):
    """At most `count` redemptions per holder per `period` (calendar, programme time zone)."""

    count = _limit(10_000, "Redemptions per holder per period.", required=True)
    period = OneOf(PERIODS, required=True)


class _OfferFieldsSchema(StrictSchema):
    """The fields a create and a PATCH share; null clears an optional one."""

    title = _title()
    description = _description()
    kind = OneOf(KINDS, metadata={"description": "What the offer grants; decides its fields."})
    percent_bp = StrictInteger(
        allow_none=True,
        validate=validate.Range(min=1, max=10_000),
        metadata={"description": "percent_off: basis points (1500 = 15 %).", "example": 1000},
    )
    max_discount = Money(allow_none=True, minimum=1)
    amount_off = Money(allow_none=True, minimum=1)
    fixed_price = Money(allow_none=True)
    nominal_value = Money(allow_none=True)
    min_purchase = Money(allow_none=True)
    starts_at = _moment("Start of the validity window.")
    ends_at = _moment("End of the validity window (after starts_at).")
    eligible_categories = fields.List(
        OneOf(HOLDER_CATEGORIES),
        validate=_no_duplicates,
        metadata={"description": "Holder categories that may claim it; empty means all."},
    )
    uses_per_voucher = _limit(10_000, "Redemptions one voucher allows.")
    holder_limit = fields.Nested(HolderLimitSchema, allow_none=True)
    total_redemptions = _limit(10_000_000, "Redemptions the offer allows in all.", allow_none=True)
    budget = Money(allow_none=True, minimum=1)
    voucher_valid_days = _limit(3660, "Days a claimed voucher stays valid.", allow_none=True)

    @post_load
    def _flatten_holder_limit(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "holder_limit" in data:
            limit = data.pop("holder_limit")
            data["holder_limit_count"] = limit["count"] if limit else None
            data["holder_limit_period"] = limit["period"] if limit else None
        return data


class OfferCreateSchema(_OfferFieldsSchema):
    """Per kind: percent_off needs percent_bp, amount_off needs amount_off, fixed_price
    needs fixed_price, service needs nominal_value; fields of another kind are refused."""

    partner_id = fields.String(
        validate=[validate.Length(min=1, max=100), _NO_NUL],
        metadata={"description": "Required for an admin key; a partner key's own by default."},
    )
    title = _title(required=True)
    description = _description(load_default="")
    kind = OneOf(KINDS, required=True)
    eligible_categories = fields.List(
        OneOf(HOLDER_CATEGORIES),
        load_default=list,
        validate=_no_duplicates,
        metadata={"description": "Holder categories that may claim it; empty means all."},
    )
    uses_per_voucher = _limit(10_000, "Redemptions one voucher allows.", load_default=1)


class OfferUpdateSchema(_OfferFieldsSchema):
    """Only the fields sent change. Switching kind clears the old kind's fields.
    Once the offer has redemptions its pricing is frozen, limits may only be loosened
    (total and budget not below what is used) and the window only extended."""

    status = OneOf(STATUSES, metadata={"description": "draft → active ⇄ paused → ended"})


class OfferSchema(Schema):
    id = fields.String(required=True)
    partner_id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": list(KINDS)})
    percent_bp = fields.Integer(allow_none=True, required=True)
    max_discount = fields.Integer(allow_none=True, required=True)
    amount_off = fields.Integer(allow_none=True, required=True)
    fixed_price = fields.Integer(allow_none=True, required=True)
    nominal_value = fields.Integer(allow_none=True, required=True)
    min_purchase = fields.Integer(allow_none=True, required=True)
    currency = currency_field()
    starts_at = fields.DateTime(allow_none=True, required=True)
    ends_at = fields.DateTime(allow_none=True, required=True)
    eligible_categories = fields.List(fields.String(), required=True)
    uses_per_voucher = fields.Integer(required=True)
    holder_limit = fields.Nested(HolderLimitSchema, allow_none=True, required=True)
    total_redemptions = fields.Integer(allow_none=True, required=True)
    budget = fields.Integer(allow_none=True, required=True)
    voucher_valid_days = fields.Integer(allow_none=True, required=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    redeemed_count = fields.Integer(
        required=True, metadata={"description": "Completed minus reversed redemptions."}
    )
    spent = fields.Integer(
        required=True, metadata={"description": "Discount value granted so far, in fen."}
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)

    @pre_dump
    def _nest_holder_limit(self, row: Any, **kwargs: Any) -> dict[str, Any]:
        offer = asdict(row) if is_dataclass(row) and not isinstance(row, type) else dict(row)
        count = offer.pop("holder_limit_count", None)
        period = offer.pop("holder_limit_period", None)
        offer["holder_limit"] = {"count": count, "period": period} if count is not None else None
        return offer


OfferPageSchema = page_schema(OfferSchema, "OfferPageSchema")


class OfferListQuerySchema(PageQuerySchema):
    status = OneOf(STATUSES)
    category = OneOf(
        HOLDER_CATEGORIES,
        metadata={"description": "Offers open to this holder category (or to every category)."},
    )
    partner_id = fields.String(validate=[validate.Length(min=1, max=100), _NO_NUL])
    q = fields.String(
        validate=[validate.Length(min=1, max=100), _NO_NUL],
        metadata={"description": "Part of the title."},
    )
