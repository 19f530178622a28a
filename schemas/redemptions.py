from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from schemas.common import (
    MAX_MONEY,
    OneOf,
    StrictInteger,
    StrictSchema,
    Text,
    TimeBoundedPageQuerySchema,
    currency_field,
    page_schema,
)
from service.domain.language import Said


class RedemptionRequestSchema(StrictSchema):
    token = fields.String(
        validate=validate.Length(min=1, max=2048),
        metadata={"description": "The voucher token read from the holder's QR code."},
    )
    code = fields.String(
        validate=validate.Regexp(
            r"^ *([0-9] *){18}$",
            error=Said("must be the 18-digit voucher code", "必须是 18 位数字的优待码"),
        ),
        metadata={
            "description": "Instead of `token`: the 18-digit voucher code under the QR "
            "(docs/product.md), resolved online; spaces are ignored.",
            "example": "052771908344601925",
        },
    )
    purchase_amount = StrictInteger(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_MONEY),
        metadata={
            "description": "The purchase in fen (1/100 yuan); above 0, except for a "
            "`service` offer, where it may be left out (0).",
            "example": 12800,
        },
    )
    reference = Text(
        max_length=100, metadata={"description": "The till's receipt number, optional."}
    )

    @validates_schema
    def _token_or_code(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("token" in data) == ("code" in data):
            raise ValidationError(
                Said("send either token or code", "请发送 token 或 code，二者只能选其一"), "token"
            )


class RedeemRequestSchema(RedemptionRequestSchema):
    """The redeem body: a preview's, and when a till made it offline, when."""

    offline_at = fields.AwareDateTime(
        format="iso",
        metadata={
            "description": "Sent by a till that redeemed while offline and sends it now: "
            "when it was made (RFC 3339 with an offset), within the last 72 hours and not "
            "more than 5 minutes ahead of the service's clock. With a QR token only. Such "
            "a redemption is recorded even where the rules would have refused it online, "
            "with that rule's code as `conflict` (docs/rules.md).",
            "example": "2026-12-06T09:30:00+08:00",
        },
    )

    @validates_schema
    def _offline_needs_a_token(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "offline_at" in data and "code" in data:
            raise ValidationError(
                Said(
                    "a voucher code cannot be checked offline: send the QR token",
                    "优待码无法离线核验：请发送二维码令牌",
                ),
                "offline_at",
            )


class OfferBriefSchema(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    kind = fields.String(required=True)


class PreviewSchema(Schema):
    offer = fields.Nested(OfferBriefSchema, required=True)
    purchase_amount = fields.Integer(required=True)
    discount_amount = fields.Integer(required=True)
    payable_amount = fields.Integer(required=True)
    currency = currency_field()
    uses_left = fields.Integer(required=True, metadata={"description": "Before this use."})
    last_redeemed_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "The voucher's latest completed redemption, or null: a till "
            "warns of a double scan."
        },
    )


class ReversalRecordSchema(Schema):
    """A reversal as a redemption shows it: when, why, and who made it."""

    id = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    reason = fields.String(required=True)
    actor = fields.Dict(
        required=True,
        metadata={
            "description": 'As the audit log names it: `{"type": "staff", "id", '
            '"display_name"}` or `{"type": "key", "id", "label"}`.'
        },
    )


class RedemptionSchema(Schema):
    """A redemption as scanners, partners and the bureau see it: never who the holder is."""

    id = fields.String(required=True)
    voucher_id = fields.String(required=True)
    offer_id = fields.String(required=True)
    partner_id = fields.String(required=True)
    purchase_amount = fields.Integer(required=True)
    discount_amount = fields.Integer(required=True)
    payable_amount = fields.Integer(required=True)
    currency = currency_field()
    status = fields.String(required=True, metadata={"enum": ["completed", "reversed"]})
    reference = fields.String(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    key_id = fields.String(
        metadata={
            "description": "The scanner key (till) that redeemed it, as in "
            "GET /v1/partners/{id}/keys. In lists and GET answers; not in the redeem "
            "answer, whose caller is that key."
        }
    )
    uses_left = fields.Integer(metadata={"description": "In the redeem answer: uses left now."})
    reversal_id = fields.String(allow_none=True)
    reversed_at = fields.DateTime(allow_none=True)
    reversal = fields.Nested(
        ReversalRecordSchema,
        allow_none=True,
        metadata={"description": "The reversal of a reversed redemption; null otherwise."},
    )
    offline_at = fields.String(
        allow_none=True,
        metadata={
            "format": "date-time",
            "description": "When a till made it while offline (`created_at` is when it "
            "arrived); null for a redemption made online.",
        },
    )
    conflict = fields.String(
        allow_none=True,
        metadata={
            "description": "An offline redemption the rules would have refused online, "
            "recorded because the discount was already given: the code of the first rule "
            "it broke (e.g. `voucher_used_up`, `budget_exhausted`). Null otherwise.",
            "example": "voucher_used_up",
        },
    )


RedemptionPageSchema = page_schema(RedemptionSchema, "RedemptionPageSchema")


class RedemptionListQuerySchema(TimeBoundedPageQuerySchema):
    partner_id = fields.String(validate=validate.Length(min=1, max=64))
    offer_id = fields.String(validate=validate.Length(min=1, max=64))
    key_id = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "The scanner key (till) that redeemed, e.g. key_…"},
    )
    status = OneOf(("completed", "reversed"))
    offline = fields.Boolean(
        truthy={"true"},
        falsy={"false"},
        metadata={"description": "true: only redemptions made offline; false: only online."},
    )
    conflict = fields.Boolean(
        truthy={"true"},
        falsy={"false"},
        metadata={
            "description": "true: only offline redemptions recorded with a conflict (the "
            "bureau's list to follow up); false: only those without."
        },
    )


class ReversalRequestSchema(StrictSchema):
    reason = Text(max_length=500, load_default="")


class ReversalSchema(Schema):
    id = fields.String(required=True)
    redemption_id = fields.String(required=True)
    discount_amount = fields.Integer(required=True)
    currency = currency_field()
    created_at = fields.DateTime(required=True)


class RefusalSchema(Schema):
    """A refused redemption of a known voucher: when, which offer and till, which problem.
    Never anything about the holder."""

    id = fields.String(required=True)
    partner_id = fields.String(required=True)
    offer_id = fields.String(required=True)
    scanner_key_id = fields.String(required=True)
    code = fields.String(required=True, metadata={"example": "below_min_purchase"})
    stage = fields.String(required=True, metadata={"enum": ["preview", "redeem"]})
    created_at = fields.DateTime(required=True)


RefusalPageSchema = page_schema(RefusalSchema, "RefusalPageSchema")


class RefusalListQuerySchema(TimeBoundedPageQuerySchema):
    partner_id = fields.String(validate=validate.Length(min=1, max=64))
    offer_id = fields.String(validate=validate.Length(min=1, max=64))
    scanner_key_id = fields.String(validate=validate.Length(min=1, max=64))
    code = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "The problem code, e.g. voucher_used_up."},
    )


class TillSchema(Schema):
    """Whose till a scanner key is, for the till page's header."""

    key_id = fields.String(required=True)
    label = fields.String(required=True, metadata={"example": "till 1"})
    partner_id = fields.String(required=True)
    partner_name = fields.String(required=True, metadata={"example": "区邮政分公司"})


class TillRedemptionSchema(RedemptionSchema):
    offer_title = fields.String(required=True)
    offer_kind = fields.String(required=True)


TillRedemptionPageSchema = page_schema(TillRedemptionSchema, "TillRedemptionPageSchema")
