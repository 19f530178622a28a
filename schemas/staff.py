"""Staff accounts, sign-in and the second factor (docs/staff.md)."""

from marshmallow import Schema, fields, validate

from schemas.common import OneOf, PageQuerySchema, StrictSchema, Text, page_schema

STAFF_ROLES = ("bureau_admin", "bureau_auditor", "partner_manager")
STATUSES = ("active", "disabled")


def _email(**kwargs):
    return fields.Email(validate=validate.Length(min=3, max=254), **kwargs)


class StaffInviteSchema(StrictSchema):
    email = _email(required=True, metadata={"example": "li.na@bureau.example"})
    role = OneOf(STAFF_ROLES, required=True)
    display_name = Text(max_length=200, load_default="", metadata={"example": "李娜"})
    partner_id = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "The partner of a partner_manager (required for that role)."},
    )


class StaffSchema(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    partner_id = fields.String(allow_none=True, required=True)
    status = fields.String(required=True)
    totp_enabled = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class StaffInvitedSchema(StaffSchema):
    setup_url = fields.String(
        required=True,
        metadata={"description": "The one-time setup link (72 hours). Shown only here."},
    )
    setup_expires_at = fields.DateTime(required=True)


StaffPageSchema = page_schema(StaffSchema, "StaffPageSchema")


class StaffListQuerySchema(PageQuerySchema):
    role = OneOf(STAFF_ROLES)
    status = OneOf(STATUSES)
    partner_id = fields.String(validate=validate.Length(min=1, max=100))
    q = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Part of the email or display name."},
    )


class StaffUpdateSchema(StrictSchema):
    display_name = Text(max_length=200)
    role = OneOf(STAFF_ROLES)
    partner_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    status = OneOf(STATUSES)
    reset_totp = fields.Boolean(
        metadata={"description": "`true` removes the account's second factor (a lost phone)."}
    )


class StaffSetupSchema(StrictSchema):
    setup_token = fields.String(required=True, validate=validate.Length(min=1, max=200))
    password = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "At least 12 characters; commonly used passwords are refused."},
    )


class StaffSignInSchema(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))
    totp_code = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=12),
        metadata={"description": "The authenticator's 6 digits (accounts with a second factor)."},
    )


class SignedInStaffSchema(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    partner_id = fields.String(allow_none=True, required=True)


class StaffSessionSchema(Schema):
    staff = fields.Nested(SignedInStaffSchema, required=True)
    csrf_token = fields.String(
        required=True, metadata={"description": "Send it as X-CSRF-Token on every change."}
    )
    expires_at = fields.DateTime(required=True)


class StaffMeSchema(StaffSchema):
    csrf_token = fields.String(
        required=True, metadata={"description": "This session's X-CSRF-Token (after a reload)."}
    )
    totp_required = fields.Boolean(
        required=True,
        metadata={"description": "YOUDAI_STAFF_TOTP requires a second factor of this account."},
    )
    must_enrol_totp = fields.Boolean(
        required=True,
        metadata={"description": "Until it enrols, this account may do nothing else."},
    )


class TotpEnrolmentSchema(Schema):
    secret = fields.String(required=True, metadata={"description": "Base32 (RFC 6238)."})
    otpauth_uri = fields.String(required=True)


class TotpConfirmSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=12))
