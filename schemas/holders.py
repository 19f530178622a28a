from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from schemas.common import DisplayText, OneOf, PageQuerySchema, StrictSchema, page_schema
from service.domain import holders as rules
from service.domain.categories import HOLDER_CATEGORIES
from service.domain.language import message_of
from service.domain.text import DISPLAY_TEXT_PATTERN, REFUSED_CHARACTERS


class Checked(fields.String):
    """A string checked and normalised by a rule of service.domain.holders, the same
    rule the CSV import applies to the cell of that column."""

    def __init__(self, check: Callable[[str], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.check(text)
        except ValueError as error:
            raise ValidationError(message_of(error)) from None


def CardNumber(**kwargs: Any) -> Checked:
    return Checked(
        rules.check_card_number,
        metadata={
            "pattern": rules.CARD_NUMBER_PATTERN,
            "description": "4–32 letters, digits or '-'; stored in upper case.",
            "example": "YD-2024-000123",
        },
        **kwargs,
    )


def Category(**kwargs: Any) -> Checked:
    return Checked(rules.check_category, metadata={"enum": list(HOLDER_CATEGORIES)}, **kwargs)


#: What _check_text refuses, for the OpenAPI document: what display text may not hold
#: (service.domain.text); a name also needs one character that is not a space.
_HIDDEN = REFUSED_CHARACTERS
_NAME_PATTERN = rf"^[^{_HIDDEN}]*[^\s{_HIDDEN}][^{_HIDDEN}]*$"


def DisplayName(**kwargs: Any) -> Checked:
    return Checked(
        rules.check_display_name,
        validate=DisplayText(),
        metadata={
            "minLength": 1,
            "maxLength": rules.DISPLAY_NAME_MAX,
            "pattern": _NAME_PATTERN,
            "example": "王建国",
        },
        **kwargs,
    )


def Region(description: str = "District, street or other area.", **kwargs: Any) -> Checked:
    return Checked(
        rules.check_region,
        validate=DisplayText(),
        metadata={
            "maxLength": rules.REGION_MAX,
            "pattern": DISPLAY_TEXT_PATTERN,
            "example": "东城街道",
            "description": description,
        },
        **kwargs,
    )


def ValidUntil(**kwargs: Any) -> Checked:
    return Checked(
        rules.check_valid_until,
        metadata={
            "format": "date",
            "description": "Last day the card is valid (YYYY-MM-DD).",
            "example": "2030-12-31",
        },
        **kwargs,
    )


def Pin(**kwargs: Any) -> Checked:
    return Checked(
        rules.check_pin,
        load_only=True,
        metadata={
            "pattern": rules.PIN_PATTERN,
            "description": "6–12 digits; stored only as an argon2id hash, never returned.",
            "example": "204816",
        },
        **kwargs,
    )


class HolderCreateSchema(StrictSchema):
    card_number = CardNumber(required=True)
    category = Category(required=True)
    display_name = DisplayName(required=True)
    region = Region(load_default="")
    valid_until = ValidUntil(required=True)
    pin = Pin(required=True)


class HolderUpdateSchema(StrictSchema):
    category = Category()
    display_name = DisplayName()
    region = Region()
    valid_until = ValidUntil()
    status = OneOf(
        rules.STATUSES, metadata={"description": "active ⇄ suspended; either → revoked (final)"}
    )
    pin = Pin()


class HolderSchema(Schema):
    id = fields.String(required=True)
    card_number = fields.String(required=True)
    category = fields.String(required=True)
    display_name = fields.String(required=True)
    region = fields.String(required=True)
    valid_until = fields.Date(required=True)
    status = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


HolderPageSchema = page_schema(HolderSchema, "HolderPageSchema")


class HolderListQuerySchema(PageQuerySchema):
    category = OneOf(HOLDER_CATEGORIES)
    status = OneOf(rules.STATUSES)
    region = Region("Exactly this region (empty: holders without one).")
    q = fields.String(
        validate=[validate.Length(min=1, max=100), validate.Regexp(r"^[^\x00-\x1f\x7f]*$")],
        metadata={"description": "A card number or its beginning, or part of the name."},
    )


class HolderImportSchema(Schema):
    """A holder import job (docs/api.md)."""

    id = fields.String(required=True, metadata={"example": "imp_38GM2K1Q2593PA8S"})
    status = fields.String(
        required=True,
        metadata={
            "enum": ["running", "completed", "failed"],
            "description": "running until the whole file is written (completed) or nothing "
            "is (failed)",
        },
    )
    rows = fields.Integer(required=True, metadata={"description": "Holder rows in the file."})
    done = fields.Integer(
        required=True, metadata={"description": "Rows checked against the stored holders so far."}
    )
    created = fields.Integer(
        required=True, metadata={"description": "New holders (0 until completed)."}
    )
    updated = fields.Integer(
        required=True,
        metadata={"description": "Holders whose fields or PIN changed (0 until completed)."},
    )
    detail = fields.String(
        required=True, allow_none=True, metadata={"description": "Why the job failed."}
    )
    created_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(required=True, allow_none=True)


#: The body of POST /v1/holders/import, documented as raw text/csv.
HOLDER_IMPORT_BODY = {
    "type": "string",
    "description": (
        "UTF-8 (a BOM is allowed). Header row: "
        + ",".join(rules.CSV_COLUMNS)
        + " in any order; one holder per line."
    ),
    "example": (
        ",".join(rules.CSV_COLUMNS) + "\nYD-2024-000123,veteran,王建国,东城街道,2030-12-31,204816\n"
    ),
}
