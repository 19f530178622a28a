"""The public directory (docs/api.md): where holders can use their card. It carries what a
holder needs to go there and nothing of the programme's workings: no counters, budgets,
limits left, keys, contacts or holders."""

from __future__ import annotations

from marshmallow import Schema, fields

from schemas.common import OneOf, PageQuerySchema, TermsSchema, Text, page_schema
from service.domain.categories import HOLDER_CATEGORIES
from service.domain.partners import CATEGORIES


class DirectoryQuerySchema(PageQuerySchema):
    category = OneOf(CATEGORIES)
    region = Text(min_length=1, max_length=100)
    holder_category = OneOf(
        HOLDER_CATEGORIES, metadata={"description": "Only offers a holder of it may use."}
    )
    q = Text(
        min_length=1,
        max_length=100,
        metadata={"description": "Part of a partner's name or of an offer's title."},
    )


class DirectoryOfferSchema(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    kind = fields.String(required=True)
    terms = fields.Nested(TermsSchema, required=True)
    eligible_categories = fields.List(
        fields.String(), required=True, metadata={"description": "Empty: every card holder."}
    )
    valid_through = fields.Date(
        required=True,
        allow_none=True,
        metadata={"description": "The last day it may be used (programme time zone)."},
    )


class DirectoryPartnerSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    region = fields.String(required=True)
    address = fields.String(required=True)
    public_phone = fields.String(required=True)
    opening_hours = fields.String(required=True)
    offers = fields.List(fields.Nested(DirectoryOfferSchema), required=True)


DirectoryPageSchema = page_schema(DirectoryPartnerSchema, "DirectoryPageSchema")
