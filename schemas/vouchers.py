"""Holder-facing shapes: sign-in, profile, offers open to a holder, vouchers, tokens."""

from marshmallow import Schema, fields, validate

from schemas.common import (
    OfferRulesSchema,
    OneOf,
    PageQuerySchema,
    StrictSchema,
    page_schema,
)

VOUCHER_STATUSES = ("active", "used_up", "expired", "revoked")


class HolderSessionCreateSchema(StrictSchema):
    card_number = fields.String(required=True, validate=validate.Length(min=1, max=64))
    pin = fields.String(required=True, validate=validate.Length(min=1, max=64))


class HolderSessionSchema(Schema):
    token = fields.String(required=True, metadata={"description": "Send as Bearer token."})
    expires_at = fields.DateTime(required=True)


class MeSchema(Schema):
    id = fields.String(required=True)
    card_number = fields.String(required=True)
    category = fields.String(required=True)
    display_name = fields.String(required=True)
    region = fields.String(required=True)
    valid_until = fields.Date(required=True)
    status = fields.String(required=True)


class OfferForHolderSchema(OfferRulesSchema):
    """What a holder sees of an offer: what it grants, not the partner's counters."""

    id = fields.String(required=True)
    partner_id = fields.String(required=True)
    partner_name = fields.String(required=True)
    partner_category = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    uses_per_voucher = fields.Integer(required=True)


OfferForHolderPageSchema = page_schema(OfferForHolderSchema, "OfferForHolderPageSchema")


class VoucherClaimSchema(StrictSchema):
    offer_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class VoucherIssueSchema(StrictSchema):
    holder_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    offer_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class VoucherSchema(Schema):
    id = fields.String(required=True)
    offer_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(VOUCHER_STATUSES)})
    uses_left = fields.Integer(required=True)
    expires_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)
    saved_total = fields.Integer(
        required=True,
        metadata={
            "description": "Fen granted with this voucher so far (reversals taken off); for "
            "a service offer its nominal value per use. The wallet tells the holder."
        },
    )
    offer = fields.Nested(OfferForHolderSchema, required=True)


VoucherPageSchema = page_schema(VoucherSchema, "VoucherPageSchema")


class VoucherListQuerySchema(PageQuerySchema):
    status = OneOf(VOUCHER_STATUSES)


class VoucherTokenSchema(Schema):
    token = fields.String(required=True, metadata={"description": "Compact JWS (EdDSA)."})
    code = fields.String(
        required=True,
        metadata={
            "description": "The 18-digit voucher code minted with the token (docs/product.md): "
            "a till may send it instead of the token; valid until expires_at.",
            "example": "052771908344601925",
        },
    )
    expires_at = fields.DateTime(required=True)
