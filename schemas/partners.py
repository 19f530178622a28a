from marshmallow import Schema, fields, validate

from schemas.common import (
    OneOf,
    PageQuerySchema,
    StrictBoolean,
    StrictSchema,
    Text,
    page_schema,
)
from service.domain.partners import CATEGORIES, STATUSES


class PartnerCreateSchema(StrictSchema):
    name = Text(required=True, min_length=1, max_length=200, metadata={"example": "区邮政分公司"})
    category = OneOf(CATEGORIES, required=True)
    contact_name = Text(max_length=100, load_default="")
    contact_phone = Text(max_length=40, load_default="")
    address = Text(max_length=300, load_default="")
    region = Text(
        max_length=100,
        load_default="",
        metadata={"description": "District or street, from YOUDAI_REGIONS when it is set."},
    )
    public_phone = Text(
        max_length=40, load_default="", metadata={"description": "The number holders call."}
    )
    opening_hours = Text(
        max_length=100, load_default="", metadata={"example": "周一至周五 9:00–17:00"}
    )
    listed = StrictBoolean(
        load_default=True, metadata={"description": "Shown in the public directory when active."}
    )


class PartnerUpdateSchema(StrictSchema):
    name = Text(min_length=1, max_length=200)
    category = OneOf(CATEGORIES)
    contact_name = Text(max_length=100)
    contact_phone = Text(max_length=40)
    address = Text(max_length=300)
    region = Text(max_length=100)
    public_phone = Text(max_length=40)
    opening_hours = Text(max_length=100)
    listed = StrictBoolean()
    status = OneOf(STATUSES, metadata={"description": "pending → active ⇄ suspended → terminated"})


class PartnerSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    contact_name = fields.String(required=True)
    contact_phone = fields.String(required=True)
    address = fields.String(required=True)
    status = fields.String(required=True)
    region = fields.String(required=True)
    public_phone = fields.String(required=True)
    opening_hours = fields.String(required=True)
    listed = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


PartnerPageSchema = page_schema(PartnerSchema, "PartnerPageSchema")


class PartnerListQuerySchema(PageQuerySchema):
    status = OneOf(STATUSES)
    category = OneOf(CATEGORIES)
    q = fields.String(
        validate=validate.Length(min=1, max=100), metadata={"description": "Part of the name."}
    )
