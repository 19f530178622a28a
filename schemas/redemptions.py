from marshmallow import Schema, fields, validate

from schemas.common import (
    MAX_MONEY,
    OneOf,
    StrictInteger,
    StrictSchema,
    TimeBoundedPageQuerySchema,
    page_schema,
)


class RedemptionRequestSchema(StrictSchema):
    token = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2048),
        metadata={"description": "The voucher token read from the holder's QR code."},
    )
    purchase_amount = StrictInteger(
        required=True,
        validate=validate.Range(min=1, max=MAX_MONEY),
        metadata={"description": "The purchase in fen (1/100 yuan).", "example": 12800},
    )
    reference = fields.String(
        validate=validate.Length(max=100),
        metadata={"description": "The till's receipt number, optional."},
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
    currency = fields.String(required=True, metadata={"example": "CNY"})
    uses_left = fields.Integer(required=True, metadata={"description": "Before this use."})


class RedemptionSchema(Schema):
    """A redemption as scanners, partners and the bureau see it: never who the holder is."""

    id = fields.String(required=True)
    voucher_id = fields.String(required=True)
    offer_id = fields.String(required=True)
    partner_id = fields.String(required=True)
    purchase_amount = fields.Integer(required=True)
    discount_amount = fields.Integer(required=True)
    payable_amount = fields.Integer(required=True)
    currency = fields.String(required=True, metadata={"example": "CNY"})
    status = fields.String(required=True, metadata={"enum": ["completed", "reversed"]})
    reference = fields.String(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    uses_left = fields.Integer(metadata={"description": "In the redeem answer: uses left now."})
    reversal_id = fields.String(allow_none=True)
    reversed_at = fields.DateTime(allow_none=True)


RedemptionPageSchema = page_schema(RedemptionSchema, "RedemptionPageSchema")


class RedemptionListQuerySchema(TimeBoundedPageQuerySchema):
    partner_id = fields.String(validate=validate.Length(min=1, max=64))
    offer_id = fields.String(validate=validate.Length(min=1, max=64))
    status = OneOf(("completed", "reversed"))


class ReversalRequestSchema(StrictSchema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class ReversalSchema(Schema):
    id = fields.String(required=True)
    redemption_id = fields.String(required=True)
    discount_amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    created_at = fields.DateTime(required=True)
