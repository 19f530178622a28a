from marshmallow import Schema, fields, validate

from schemas.common import OneOf, PageQuerySchema, StrictSchema, Text, page_schema
from service.domain.partners import CATEGORIES, STATUSES


class PartnerCreateSchema(StrictSchema):
    name = Text(required=True, min_length=1, max_length=200, metadata={"example": "区邮政分公司"})
    category = OneOf(CATEGORIES, required=True)
    contact_name = Text(max_length=100, load_default="")
    contact_phone = Text(max_length=40, load_default="")
    address = Text(max_length=300, load_default="")


class PartnerUpdateSchema(StrictSchema):
    name = Text(min_length=1, max_length=200)
    category = OneOf(CATEGORIES)
    contact_name = Text(max_length=100)
    contact_phone = Text(max_length=40)
    address = Text(max_length=300)
    status = OneOf(STATUSES, metadata={"description": "pending → active ⇄ suspended → terminated"})


class PartnerSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    contact_name = fields.String(required=True)
    contact_phone = fields.String(required=True)
    address = fields.String(required=True)
    status = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


PartnerPageSchema = page_schema(PartnerSchema, "PartnerPageSchema")


class PartnerListQuerySchema(PageQuerySchema):
    status = OneOf(STATUSES)
    category = OneOf(CATEGORIES)
    q = fields.String(
        validate=validate.Length(min=1, max=100), metadata={"description": "Part of the name."}
    )
