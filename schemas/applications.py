"""Applications to join as a partner (docs/api.md): the public form's body and the bureau's
views of it."""

from marshmallow import Schema, fields, validate

from schemas.common import OneOf, PageQuerySchema, StrictBoolean, StrictSchema, Text, page_schema
from schemas.partners import PartnerSchema
from service.domain.applications import STATUSES
from service.domain.language import Said
from service.domain.partners import CATEGORIES


class ApplicationCreateSchema(StrictSchema):
    name = Text(required=True, min_length=1, max_length=200, metadata={"example": "老兵饭店"})
    category = OneOf(CATEGORIES, required=True)
    contact_name = Text(required=True, min_length=1, max_length=100, metadata={"example": "王芳"})
    contact_phone = Text(
        required=True, min_length=1, max_length=40, metadata={"example": "010-6403 7700"}
    )
    contact_email = fields.Email(
        required=True,
        validate=validate.Length(min=3, max=254),
        metadata={"description": "Its partner_manager is invited here when approved."},
    )
    address = Text(required=True, min_length=1, max_length=300)
    region = Text(
        required=True,
        min_length=1,
        max_length=100,
        metadata={"description": "District or street, from YOUDAI_REGIONS when it is set."},
    )
    public_phone = Text(
        max_length=40, load_default="", metadata={"description": "The number holders call."}
    )
    opening_hours = Text(
        max_length=100, load_default="", metadata={"example": "周一至周五 9:00–17:00"}
    )
    offer_idea = Text(
        required=True,
        min_length=1,
        max_length=1000,
        multiline=True,
        metadata={"description": "What the enterprise would offer card holders."},
    )
    agree_to_terms = StrictBoolean(
        required=True,
        validate=validate.Equal(True, error=Said("You must agree to the terms", "须同意合作条款")),
        metadata={"description": "Must be true."},
    )


class ApplicationSubmittedSchema(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["submitted"]})
    created_at = fields.DateTime(required=True)
    status_url = fields.String(
        required=True,
        metadata={
            "description": "A secret link: the application's status (and the reason "
            "when rejected), for the applicant. In this answer only."
        },
    )


class ApplicationSchema(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    name = fields.String(required=True)
    category = fields.String(required=True)
    contact_name = fields.String(required=True)
    contact_phone = fields.String(required=True)
    contact_email = fields.String(required=True)
    address = fields.String(required=True)
    region = fields.String(required=True)
    public_phone = fields.String(required=True)
    opening_hours = fields.String(required=True)
    offer_idea = fields.String(required=True)
    rejection_reason = fields.String(allow_none=True, required=True)
    partner_id = fields.String(
        allow_none=True, required=True, metadata={"description": "The partner, once approved."}
    )
    created_at = fields.DateTime(required=True)
    decided_at = fields.DateTime(allow_none=True, required=True)


ApplicationPageSchema = page_schema(ApplicationSchema, "ApplicationPageSchema")


class ApplicationListQuerySchema(PageQuerySchema):
    status = OneOf(STATUSES)


class ApplicationRejectionSchema(StrictSchema):
    reason = Text(
        required=True,
        min_length=1,
        max_length=500,
        metadata={"description": "Shown to the applicant on its status page."},
    )


class ManagerInvitedSchema(Schema):
    email = fields.String(required=True)
    setup_url = fields.String(
        required=True, metadata={"description": "In this answer only; works once, for 72 hours."}
    )


class ApplicationApprovedSchema(Schema):
    partner = fields.Nested(PartnerSchema, required=True)
    manager = fields.Nested(ManagerInvitedSchema, required=True)


class JoinStatusQuerySchema(StrictSchema):
    token = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The token of the status link."},
    )
    lang = OneOf(("zh", "en"), metadata={"description": "Page language (else Accept-Language)."})
