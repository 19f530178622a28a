"""Building blocks shared by every schema: strict fields, problems and pages."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from service.domain.language import Keyed, Said
from service.domain.pricing import CURRENCY, KINDS
from service.domain.text import (
    DISPLAY_TEXT_PATTERN,
    HIDDEN_CHARACTERS,
    MULTILINE_TEXT_PATTERN,
    display_text_problem,
)

#: Largest amount of money the API accepts, in fen (¥100 million): far above any purchase,
#: far below anything that could overflow a bigint when summed.
MAX_MONEY = 10_000_000_000


@dataclass(frozen=True)
class Variants:
    """How the OpenAPI document states a body whose valid fields depend on one field's
    value: `oneOf` the schemas `by_value`, told apart by the discriminator `field`, or
    (`anyOf`) one of `otherwise` when the body may leave that field out. `example` is the
    body the docs page shows (Swagger UI leaves a discriminator out of the examples it
    makes up).

    The server still loads the body with the schema that carries these and then checks
    the rule in the domain; the variants are derived from the same definitions, and a
    test holds the two to the same answers (for offers, tests/unit/test_offer_schemas.py).
    """

    field: str
    by_value: Mapping[str, type[Schema]]
    otherwise: tuple[type[Schema], ...] = ()
    example: Mapping[str, Any] | None = None


def _defining_class(field_class: type, key: str) -> str:
    """The name of the field class whose default message for `key` the field has (the
    nearest that defines it), as service.domain.messages knows it: Integer.invalid
    (not Number.invalid, which it overrides), Field.required."""
    for klass in field_class.__mro__:
        if key in klass.__dict__.get("default_error_messages", {}):
            return klass.__name__
    return field_class.__name__


#: The attributes of marshmallow's validators that hold their message templates.
_VALIDATOR_MESSAGES = ("error", "message_min", "message_max", "message_all", "message_equal")


def _key_validator(validator: Any) -> None:
    if not isinstance(validator, validate.Validator):
        return
    name = type(validator).__name__
    params: dict[str, Any] = {}
    if isinstance(validator, validate.Range):
        params = {
            "min_op": "gte" if validator.min_inclusive else "gt",
            "max_op": "lte" if validator.max_inclusive else "lt",
        }
    for attribute in _VALIDATOR_MESSAGES:
        template = getattr(validator, attribute, None)
        if isinstance(template, str) and not isinstance(template, (Keyed, Said)):
            setattr(validator, attribute, Keyed(template, f"{name}.{attribute}", params))


def _key_field(field: fields.Field) -> None:
    field.error_messages = {
        key: Keyed(message, f"{_defining_class(type(field), key)}.{key}")
        if isinstance(message, str) and not isinstance(message, (Keyed, Said))
        else message
        for key, message in field.error_messages.items()
    }
    for validator in field.validators:
        _key_validator(validator)
    for inner in (getattr(field, "inner", None), getattr(field, "value_field", None)):
        if isinstance(inner, fields.Field):
            _key_field(inner)


def key_messages(schema: Schema) -> None:
    """Make every message `schema` can answer with a `Keyed`: its English as marshmallow
    words it, and the key service.domain.messages says it in Chinese by (docs/api.md)."""
    schema.error_messages = {
        key: message if isinstance(message, Keyed) else Keyed(message, f"Schema.{key}")
        for key, message in schema.error_messages.items()
    }
    for field in schema.fields.values():
        _key_field(field)


class StrictSchema(Schema):
    """Unknown fields are refused, never silently dropped; every message is keyed, so a
    problem can say it in Chinese (`key_messages`)."""

    #: Set on a body schema whose fields depend on one of them (service.api.docs reads it).
    openapi_variants: ClassVar[Variants | None] = None

    class Meta:
        unknown = RAISE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        key_messages(self)


class StrictInteger(fields.Integer):
    """An integer that refuses strings, floats and booleans (JSON true is not 1)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false only: not 0 and 1, not "yes"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def Money(*, required: bool = False, minimum: int = 0, **kwargs: Any) -> StrictInteger:
    """An amount in fen (integer minor units of CNY)."""
    return StrictInteger(
        required=required,
        validate=validate.Range(min=minimum, max=MAX_MONEY),
        metadata={"description": "Amount in fen (1/100 yuan).", "example": 12800},
        **kwargs,
    )


class DisplayText(validate.Validator):
    """The check of display text (docs/api.md; service.domain.text): no control characters,
    no bidirectional overrides or isolates. Every field whose text a page shows as written
    (a name, title, label, reason, address) has it; tests/unit/test_display_text_fields.py finds
    them by name. `multiline` admits line breaks and tabs (an offer's description)."""

    def __init__(self, *, multiline: bool = False) -> None:
        self.multiline = multiline
        self.error = HIDDEN_CHARACTERS

    def __call__(self, value: str) -> str:
        problem = display_text_problem(value, multiline=self.multiline)
        if problem is not None:
            raise ValidationError(problem)
        return value

    @property
    def pattern(self) -> str:
        """The same rule as a pattern, for the OpenAPI document."""
        return MULTILINE_TEXT_PATTERN if self.multiline else DISPLAY_TEXT_PATTERN


def Text(
    *, max_length: int = 200, min_length: int = 0, multiline: bool = False, **kwargs: Any
) -> fields.String:
    """Display text: a length, and no hidden characters (DisplayText)."""
    check = DisplayText(multiline=multiline)
    metadata = {"pattern": check.pattern, **kwargs.pop("metadata", {})}
    return fields.String(
        validate=[validate.Length(min=min_length, max=max_length), check],
        metadata=metadata,
        **kwargs,
    )


def OneOf(choices: tuple[str, ...] | list[str], **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(list(choices)), **kwargs)


class ProblemFieldErrorSchema(Schema):
    field = fields.String(required=True)
    message = fields.String(required=True)
    line = fields.Integer(metadata={"description": "Line of an imported file (CSV imports only)."})


class ProblemSchema(Schema):
    """application/problem+json (RFC 9457) with a stable `code`."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True, metadata={"example": "validation_error"})
    errors = fields.List(fields.Nested(ProblemFieldErrorSchema))
    error_count = fields.Integer(
        metadata={
            "description": "A file's problems in all, when `errors` lists only the first "
            "1 000 (POST /v1/holders/import)."
        }
    )
    min_purchase = fields.Integer(
        metadata={"description": "With below_min_purchase: the offer's minimum spend, in fen."}
    )


#: Unpadded base64url, as service.domain.pagination.encode_cursor writes it.
CURSOR_PATTERN = r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$"

#: A local date (YYYY-MM-DD) or an RFC 3339 instant with an offset, years 1900 to 9998
#: (service.domain.periods.parse_bound checks the calendar and the range again).
TIME_BOUND_PATTERN = (
    r"^(?:19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
    r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9]))?$"
)


class PageQuerySchema(StrictSchema):
    limit = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=200),
        metadata={"description": "Items per page (default 50, at most 200)."},
    )
    cursor = fields.String(
        validate=[validate.Length(min=2, max=200), validate.Regexp(CURSOR_PATTERN)],
        metadata={"description": "`next_cursor` of the previous page."},
    )


def _time_bound(value: str) -> None:
    if not 10 <= len(value) <= 40:
        raise ValidationError(
            Said(
                "must be a date (YYYY-MM-DD) or an RFC 3339 date-time",
                "必须是日期（YYYY-MM-DD）或 RFC 3339 日期时间",
            )
        )


_TIME_BOUND_DOC = {"pattern": TIME_BOUND_PATTERN, "minLength": 10, "maxLength": 40}


class TimeBoundedPageQuerySchema(PageQuerySchema):
    """A list filtered by when its items happened: `from` and `to` take a local calendar
    date or an RFC 3339 instant (parsed by service.api.http.read_time_bounds)."""

    from_ = fields.String(
        data_key="from",
        validate=_time_bound,
        metadata={
            "description": "Date (programme time zone) or date-time; inclusive.",
            **_TIME_BOUND_DOC,
        },
    )
    to = fields.String(
        validate=_time_bound,
        metadata={
            "description": "Date (its whole day included) or date-time (exclusive).",
            **_TIME_BOUND_DOC,
        },
    )


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    """A `{items, next_cursor}` envelope around `item`."""
    return type(
        name,
        (Schema,),
        {
            "items": fields.List(fields.Nested(item), required=True),
            "next_cursor": fields.String(allow_none=True, required=True),
        },
    )


def _text(message: Any) -> str:
    """A message as it is (a `Keyed` or `Said` keeps its Chinese), or as text."""
    return message if isinstance(message, str) else str(message)


def messages_to_field_errors(error: ValidationError) -> list[tuple[str, str]]:
    """Flatten marshmallow's nested messages into (dotted.field, message) pairs, each
    message as marshmallow gave it (keyed, so a problem can say it in Chinese)."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list):
            for inner in value:
                if isinstance(inner, (dict, list)):
                    walk(prefix, inner)
                else:
                    pairs.append((prefix or "body", _text(inner)))
        else:
            pairs.append((prefix or "body", _text(value)))

    walk("", error.messages)
    return pairs


def currency_field() -> fields.Constant:
    """The currency beside every amount (docs/api.md): always CNY, amounts in fen."""
    return fields.Constant(CURRENCY, required=True, metadata={"type": "string", "enum": [CURRENCY]})


class TermsSchema(Schema):
    """An offer's rules in plain words, written by the service (service.domain.terms)."""

    zh = fields.String(required=True, metadata={"example": "满¥10可用，9折，最多减¥50"})
    en = fields.String(
        required=True, metadata={"example": "10% off purchases of ¥10 or more, at most ¥50 off"}
    )


class OfferRulesSchema(Schema):
    """What every answer that shows an offer says of what it grants: its kind and pricing
    fields, its window, and its terms in words (service.domain.terms)."""

    kind = fields.String(required=True, metadata={"enum": list(KINDS)})
    percent_bp = fields.Integer(allow_none=True, required=True)
    max_discount = fields.Integer(allow_none=True, required=True)
    amount_off = fields.Integer(allow_none=True, required=True)
    fixed_price = fields.Integer(allow_none=True, required=True)
    nominal_value = fields.Integer(allow_none=True, required=True)
    min_purchase = fields.Integer(allow_none=True, required=True)
    currency = currency_field()
    starts_at = fields.DateTime(allow_none=True, required=True)
    ends_at = fields.DateTime(allow_none=True, required=True)
    terms = fields.Nested(
        TermsSchema, required=True, metadata={"description": "The offer's rules in words."}
    )
