"""The till pack (docs/api.md): what a till needs to keep redeeming offline."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from marshmallow import Schema, fields, pre_dump

from schemas.common import OfferRulesSchema
from schemas.jwks import JwksSchema
from service.domain.offers import STATUSES
from service.domain.periods import PERIODS


class PackPartnerSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True, metadata={"example": "区邮政分公司"})


class PackTillSchema(Schema):
    id = fields.String(required=True, metadata={"description": "The scanner key's id."})
    label = fields.String(required=True, metadata={"example": "till 1"})


class PackHolderLimitSchema(Schema):
    count = fields.Integer(required=True)
    period = fields.String(required=True, metadata={"enum": list(PERIODS)})


class PackOfferSchema(OfferRulesSchema):
    """An active offer as a till prices and checks it offline: its pricing fields, window,
    limits and terms in words. No counters: they would be stale within minutes."""

    id = fields.String(required=True)
    title = fields.String(required=True)
    eligible_categories = fields.List(fields.String(), required=True)
    uses_per_voucher = fields.Integer(required=True)
    holder_limit = fields.Nested(PackHolderLimitSchema, allow_none=True, required=True)
    total_redemptions = fields.Integer(allow_none=True, required=True)
    budget = fields.Integer(allow_none=True, required=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})

    @pre_dump
    def _flatten(self, item: Any, **kwargs: Any) -> dict[str, Any]:
        offer = asdict(item.offer)
        count = offer.pop("holder_limit_count")
        period = offer.pop("holder_limit_period")
        offer["holder_limit"] = None if count is None else {"count": count, "period": period}
        offer["terms"] = item.terms.as_dict()
        return offer


class TillPackSchema(Schema):
    partner = fields.Nested(PackPartnerSchema, required=True)
    till = fields.Nested(PackTillSchema, required=True)
    offers = fields.List(
        fields.Nested(PackOfferSchema),
        required=True,
        metadata={"description": "Every active offer of the partner (none if it is not active)."},
    )
    jwks = fields.Nested(
        JwksSchema,
        required=True,
        metadata={"description": "The same document as /.well-known/jwks.json."},
    )
    revoked_vouchers = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "Ids of this partner's vouchers that can no longer be used "
            "(revoked, used up, expired, or their holder suspended or revoked) and whose "
            "newest token has not been expired for more than 5 minutes: only a token of "
            "those could still pass the till's own check."
        },
    )
    server_time = fields.DateTime(required=True)
    valid_until = fields.DateTime(
        required=True,
        metadata={"description": "server_time + 24 h: no offline redemption after it."},
    )

    @pre_dump
    def _nest(self, pack: Any, **kwargs: Any) -> dict[str, Any]:
        return {
            "partner": {"id": pack.partner_id, "name": pack.partner_name},
            "till": {"id": pack.till_id, "label": pack.till_label},
            "offers": pack.offers,
            "jwks": pack.jwks,
            "revoked_vouchers": pack.revoked_vouchers,
            "server_time": pack.server_time,
            "valid_until": pack.valid_until,
        }
