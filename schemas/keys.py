from marshmallow import Schema, fields

from schemas.common import OneOf, StrictSchema, Text, page_schema


class KeyCreateSchema(StrictSchema):
    role = OneOf(("partner", "scanner"), required=True)
    label = Text(max_length=100, load_default="", metadata={"example": "till 1"})


class KeySchema(Schema):
    id = fields.String(required=True)
    role = fields.String(required=True)
    label = fields.String(required=True)
    partner_id = fields.String(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(allow_none=True, required=True)
    revoked_at = fields.DateTime(allow_none=True, required=True)


class KeyCreatedSchema(KeySchema):
    key = fields.String(required=True, metadata={"description": "The secret. Shown only here."})


KeyPageSchema = page_schema(KeySchema, "KeyPageSchema")
