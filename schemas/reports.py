"""Reports: discount totals by partner, offer, holder category and month; the summary."""

from __future__ import annotations

import itertools

from marshmallow import Schema, ValidationError, fields, validate

from schemas.common import OneOf, StrictSchema, currency_field
from service.domain.categories import HOLDER_CATEGORIES
from service.domain.language import message_of
from service.domain.partners import CATEGORIES as PARTNER_CATEGORIES
from service.domain.reports import FIRST_DATE, FORMATS, GROUPS, LAST_DATE, parse_group_by

_DATES = validate.Range(min=FIRST_DATE, max=LAST_DATE)
#: FIRST_DATE to LAST_DATE (years 2000 to 2999) for the OpenAPI document; days to 28,
#: the calendar itself is checked by the field.
_DATE_PATTERN = r"^2[0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])$"


#: Every list of distinct groupings, spelled out for the OpenAPI document (64 of them).
_GROUP_BY_PATTERN = (
    "^(?:"
    + "|".join(
        ",".join(order)
        for size in range(len(GROUPS) + 1)
        for order in itertools.permutations(GROUPS, size)
    )
    + ")$"
)


def _group_by(value: str) -> None:
    try:
        parse_group_by(value)
    except ValueError as error:
        raise ValidationError(message_of(error)) from None


def _from_field() -> fields.Date:
    return fields.Date(
        data_key="from",
        validate=_DATES,
        metadata={
            "description": "First calendar day of the period, YYYY-MM-DD in the programme "
            "time zone (YOUDAI_TIMEZONE), included. Default: 1 January of the year of `to`, "
            "or of this year.",
            "example": "2026-01-01",
            "pattern": _DATE_PATTERN,
        },
    )


def _to_field() -> fields.Date:
    return fields.Date(
        validate=_DATES,
        metadata={
            "description": "Last calendar day of the period, YYYY-MM-DD in the programme "
            "time zone, included. Default: 31 December of the year of `from`, or of this year.",
            "example": "2026-12-31",
            "pattern": _DATE_PATTERN,
        },
    )


class DiscountReportQuerySchema(StrictSchema):
    group_by = fields.String(
        validate=[validate.Length(max=100), _group_by],
        metadata={
            "description": "Comma-separated groupings, any of "
            f"{', '.join(GROUPS)}, each at most once; rows sort in this order. "
            "Empty or absent: one row with the totals.",
            "example": "partner,month",
            "pattern": _GROUP_BY_PATTERN,
        },
    )
    from_ = _from_field()
    to = _to_field()
    partner_id = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Only this partner (a partner key always sees only its own)."},
    )
    offer_id = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Only this offer."},
    )
    format = OneOf(
        FORMATS,
        metadata={
            "description": "json, csv (UTF-8 with BOM) or xlsx; overrides the Accept header.",
        },
    )


class DiscountMeasuresSchema(Schema):
    redemptions = fields.Integer(
        required=True, metadata={"description": "Redemptions made in the period."}
    )
    reversals = fields.Integer(
        required=True,
        metadata={"description": "Reversals made in the period (of any redemption)."},
    )
    purchase_total = fields.Integer(
        required=True,
        metadata={"description": "Purchases in fen: redeemed minus reversed in the period."},
    )
    discount_total = fields.Integer(
        required=True,
        metadata={"description": "Discount value in fen: granted minus reversed in the period."},
    )
    offline = fields.Integer(
        required=True,
        metadata={
            "description": "Of the redemptions, those a till made offline (counted on the "
            "day they arrived, as every redemption is)."
        },
    )
    conflicts = fields.Integer(
        required=True,
        metadata={
            "description": "Of the offline redemptions, those recorded with a conflict: the "
            "rules would have refused them online (GET /v1/redemptions?conflict=true)."
        },
    )


class DiscountRowSchema(DiscountMeasuresSchema):
    """One group; only the columns of the requested groupings are present."""

    partner_id = fields.String()
    partner_name = fields.String()
    partner_region = fields.String(
        metadata={"description": "The partner's region (its public profile), as it is now."}
    )
    offer_id = fields.String()
    offer_title = fields.String()
    category = fields.String(metadata={"enum": list(HOLDER_CATEGORIES)})
    month = fields.String(metadata={"description": "YYYY-MM, programme time zone."})


class DiscountReportSchema(Schema):
    currency = currency_field()
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    group_by = fields.List(fields.String(metadata={"enum": list(GROUPS)}), required=True)
    rows = fields.List(fields.Nested(DiscountRowSchema), required=True)
    totals = fields.Nested(DiscountMeasuresSchema, required=True)


class SummaryQuerySchema(StrictSchema):
    from_ = _from_field()
    to = _to_field()


class StatementQuerySchema(StrictSchema):
    year = fields.Integer(
        validate=validate.Range(min=2000, max=2999),
        metadata={"description": "A calendar year (or give `from` and `to`)."},
    )
    from_ = _from_field()
    to = _to_field()


class StatementDigestQuerySchema(StrictSchema):
    digest = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9a-f]{64}$"),
        metadata={"description": "The SHA-256 of the statement's JWS text, lower-case hex."},
    )


class StatementSchema(Schema):
    statement = fields.String(
        required=True,
        metadata={
            "description": "A compact JWS (EdDSA, `typ` yd-statement+jwt, `kid` of the JWKS) "
            "whose payload holds `iss`, `period` {from, to, timezone, starts_at, "
            "ends_before}, `final`, `generated_at`, `currency`, the summary's `partners`, "
            "`holders`, `vouchers_issued`, the report's `redemptions`, `reversals`, "
            "`purchase_total`, `discount_total`, `offline`, `conflicts`, "
            "`by_holder_category`, `by_partner` and `log` {size, root, first_index, "
            "last_index}. `youdai verify-statement` checks it with the JWKS and the exported "
            "entries alone."
        },
    )


class PartnerCountsSchema(Schema):
    enrolled = fields.Integer(
        required=True, metadata={"description": "Enrolled by the end of the period."}
    )
    active = fields.Integer(
        required=True, metadata={"description": "Of those, the ones whose status is active now."}
    )


class SummaryPartnersSchema(PartnerCountsSchema):
    by_category = fields.Dict(
        keys=fields.String(metadata={"enum": list(PARTNER_CATEGORIES)}),
        values=fields.Nested(PartnerCountsSchema),
        required=True,
    )


class SummarySchema(Schema):
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    currency = currency_field()
    partners = fields.Nested(SummaryPartnersSchema, required=True)
    holders = fields.Integer(
        required=True, metadata={"description": "Card holders enrolled by the end of the period."}
    )
    vouchers_issued = fields.Integer(
        required=True, metadata={"description": "Vouchers claimed or issued in the period."}
    )
    redemptions = fields.Integer(required=True)
    reversals = fields.Integer(required=True)
    offline = fields.Integer(
        required=True, metadata={"description": "Of the redemptions, those made offline."}
    )
    conflicts = fields.Integer(
        required=True,
        metadata={
            "description": "Of the offline redemptions, those the rules would have refused "
            "online (recorded with a conflict)."
        },
    )
    refusals = fields.Integer(
        required=True,
        metadata={
            "description": "Redemptions refused for a known voucher (GET /v1/redemption-refusals)."
        },
    )
    discount_total = fields.Integer(
        required=True,
        metadata={
            "description": "Fen, net of reversals: the `totals.discount_total` of "
            "GET /v1/reports/discounts for the same period."
        },
    )
