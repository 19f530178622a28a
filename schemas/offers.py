"""Offers: what a partner grants card holders (docs/product.md and docs/api.md).

Which fields a kind needs is a domain rule (service.domain.offers), checked after
these schemas have checked types and ranges, so each error names its field. The
OpenAPI document states that rule too: one variant per kind, derived below from the
same KIND_FIELDS (OfferCreateSchema.openapi_variants, OfferUpdateSchema.openapi_variants).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, pre_dump, validate

from schemas.common import (
    Money,
    OfferRulesSchema,
    OneOf,
    PageQuerySchema,
    StrictInteger,
    StrictSchema,
    Text,
    Variants,
    page_schema,
)
from service.domain.categories import HOLDER_CATEGORIES
from service.domain.language import Said
from service.domain.offers import ALL_KIND_FIELDS, KIND_FIELDS, KINDS, PERIODS, STATUSES

#: Offer windows are accepted within these years: far beyond any programme, far from
#: overflow. The year is the one written, in the value's own offset, so that the
#: document can state the range as a pattern on the text (_YEAR_PATTERN).
_FIRST_YEAR, _LAST_YEAR = 2000, 2199
_YEAR_PATTERN = r"^2[01][0-9]{2}-"


def _within_range(value: datetime) -> None:
    if not _FIRST_YEAR <= value.year <= _LAST_YEAR:
        raise ValidationError(
            Said(
                f"must be between {_FIRST_YEAR} and {_LAST_YEAR}",
                f"年份必须在 {_FIRST_YEAR} 到 {_LAST_YEAR} 之间",
            )
        )


#: PostgreSQL text cannot hold NUL at all.
_NO_NUL = validate.Regexp(
    r"^[^\x00]*$", error=Said("must not contain NUL characters", "不得包含 NUL 字符")
)


def _title(**kwargs: Any) -> fields.String:
    """One line of display text."""
    return Text(min_length=1, max_length=200, metadata={"example": "邮政寄递九折"}, **kwargs)


def _description(**kwargs: Any) -> fields.String:
    """Display text of several lines."""
    return Text(max_length=2000, multiline=True, **kwargs)


def _no_duplicates(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ValidationError(Said("lists a category twice", "重复列出了同一类别"))


def _categories(**kwargs: Any) -> fields.List:
    return fields.List(
        OneOf(HOLDER_CATEGORIES),
        validate=_no_duplicates,
        metadata={
            "description": "Holder categories that may claim it; empty means all.",
            "uniqueItems": True,
        },
        **kwargs,
    )


def _moment(description: str) -> fields.AwareDateTime:
    return fields.AwareDateTime(
        format="iso",
        allow_none=True,
        validate=_within_range,
        metadata={
            "description": f"{description} RFC 3339 with an offset, years {_FIRST_YEAR} "
            f"to {_LAST_YEAR}; null leaves it open.",
            "example": "2026-01-01T00:00:00+08:00",
            "pattern": _YEAR_PATTERN,
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
    eligible_categories = _categories()
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
    eligible_categories = _categories(load_default=list)
    uses_per_voucher = _limit(10_000, "Redemptions one voucher allows.", load_default=1)


class OfferUpdateSchema(_OfferFieldsSchema):
    """Only the fields sent change. Switching kind clears the old kind's fields.
    Once the offer has redemptions its pricing is frozen, limits may only be loosened
    (total and budget not below what is used) and the window only extended."""

    status = OneOf(STATUSES, metadata={"description": "draft → active ⇄ paused → ended"})


# --- the kind rule, stated per kind for the OpenAPI document ---------------------------
#
# Each variant narrows a body schema to one kind with the same KIND_FIELDS that
# check_kind_fields reads: the kind's first field is needed, the fields of other kinds may
# only be null. Loading a body through its variant answers what the schema and the domain
# rule answer together (tests/unit/test_offer_schemas.py holds them to it).


def _not_used_by(kind: str) -> StrictInteger:
    """A field of another kind: left out or null, as check_kind_fields allows."""

    def refuse(value: object) -> None:
        raise ValidationError(Said(f"not used by {kind} offers", f"{kind} 类优惠不使用此字段"))

    return StrictInteger(
        allow_none=True,
        validate=refuse,
        metadata={"description": f"Not used by {kind} offers: null or left out.", "enum": [None]},
    )


def _needed_by(field: fields.Field, kind: str, *, required: bool) -> fields.Field:
    """The kind's first field (percent_bp, amount_off, …): never null, and sent if required."""
    needed = copy.copy(field)
    needed.required = required
    needed.allow_none = False
    message = Said(f"required for {kind} offers", f"{kind} 类优惠必须填写")
    needed.error_messages = {**field.error_messages, "required": message, "null": message}
    return needed


def _kind_variant(
    base: type[StrictSchema], name: str, kind: str, *, with_kind: bool, own_required: bool
) -> type[Schema]:
    """`base` narrowed to `kind`: with `kind` itself required, or without the field."""
    own = KIND_FIELDS[kind]
    attrs: dict[str, Any] = {
        other: _not_used_by(kind) for other in ALL_KIND_FIELDS if other not in own
    }
    attrs[own[0]] = _needed_by(base._declared_fields[own[0]], kind, required=own_required)
    meta: dict[str, Any] = {}
    needed = "is required" if own_required else "is not null"
    others = "the fields of other kinds are null or left out"
    if with_kind:
        attrs["kind"] = OneOf((kind,), required=True)
        switch = "" if own_required else " (and is sent to switch to this kind)"
        attrs["__doc__"] = f"kind {kind}: {own[0]} {needed}{switch}; {others}."
    else:
        meta["exclude"] = ("kind",)
        attrs["__doc__"] = (
            f"kind left out, so the offer keeps its own; for a {kind} offer {own[0]} "
            f"{needed} and {others}."
        )
    attrs["Meta"] = type("Meta", (base.Meta,), meta)
    attrs["openapi_variants"] = None  # a variant is documented as itself
    return type(name, (base,), attrs)


def _camel(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("_"))


OfferCreateSchema.openapi_variants = Variants(
    field="kind",
    # For a partner key (an admin key adds partner_id); docs/api.md has a percent_off one.
    example={
        "title": "寄递满 100 元减 10 元",
        "kind": "amount_off",
        "amount_off": 1000,
        "min_purchase": 10000,
        "ends_at": "2026-12-31T23:59:59+08:00",
        "holder_limit": {"count": 1, "period": "month"},
        "budget": 1000000,
    },
    by_value={
        kind: _kind_variant(
            OfferCreateSchema,
            f"OfferCreate{_camel(kind)}Schema",
            kind,
            with_kind=True,
            own_required=True,
        )
        for kind in KINDS
    },
)

#: A PATCH is judged against the offer it changes, so its body alone says less: with
#: `kind`, that kind's first field may be left out (the offer may have it already; when
#: the kind changes it is needed, which only the offer can tell), and without `kind`
#: the body may set fields of one kind only, whichever the offer has.
OfferUpdateSchema.openapi_variants = Variants(
    field="kind",
    example={"status": "active"},  # publishes a draft (docs/api.md)
    by_value={
        kind: _kind_variant(
            OfferUpdateSchema,
            f"OfferUpdate{_camel(kind)}Schema",
            kind,
            with_kind=True,
            own_required=False,
        )
        for kind in KINDS
    },
    otherwise=tuple(
        _kind_variant(
            OfferUpdateSchema,
            f"OfferUpdate{_camel(kind)}FieldsSchema",
            kind,
            with_kind=False,
            own_required=False,
        )
        for kind in KINDS
    ),
)


class OfferSchema(OfferRulesSchema):
    id = fields.String(required=True)
    partner_id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
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
