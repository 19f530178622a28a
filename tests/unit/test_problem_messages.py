"""Every message a request schema can answer with has its Chinese (docs/api.md), looked up
by marshmallow's key, never by its English words; the service's own texts carry theirs."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

from marshmallow import fields

import schemas
from schemas.common import StrictSchema
from service.domain import messages
from service.domain.errors import ApiError, FieldError, field_errors
from service.domain.language import CHINESE, ENGLISH, Keyed, Said


def strict_schemas() -> list[type[StrictSchema]]:
    for module in pkgutil.iter_modules(schemas.__path__):
        importlib.import_module(f"schemas.{module.name}")
    found, stack = [], [StrictSchema]
    while stack:
        klass = stack.pop()
        found.append(klass)
        stack.extend(klass.__subclasses__())
    return found


def keyed(field: fields.Field) -> Iterator[Keyed]:
    yield from (m for m in field.error_messages.values() if isinstance(m, Keyed))
    for validator in field.validators:
        for attribute in ("error", "message_min", "message_max", "message_all", "message_equal"):
            message = getattr(validator, attribute, None)
            if isinstance(message, Keyed):
                yield message
    for inner in (getattr(field, "inner", None), getattr(field, "value_field", None)):
        if isinstance(inner, fields.Field):
            yield from keyed(inner)


def test_every_keyed_message_of_every_request_schema_has_its_chinese() -> None:
    keys: set[str] = set()
    for klass in strict_schemas():
        schema = klass()
        keys.update(m.key for m in schema.error_messages.values() if isinstance(m, Keyed))
        for field in schema.fields.values():
            keys.update(message.key for message in keyed(field))
    assert {"Field.required", "Schema.unknown", "Integer.invalid", "Length.message_max"} <= keys
    assert sorted(keys - messages.FIELD_MESSAGES_ZH.keys()) == []


def test_a_keyed_message_is_formatted_with_marshmallows_values_in_chinese() -> None:
    longer = Keyed("Longer than maximum length {max}.", "Length.message_max").format(max=200)
    assert longer == "Longer than maximum length 200."
    assert messages.localize(longer, CHINESE) == "长度不能超过 200。"
    at_least = Keyed(
        "Must be greater than or equal to {min}.", "Range.message_min", {"min_op": "gte"}
    )
    assert messages.localize(at_least.format(min=1), CHINESE) == "必须大于或等于 1。"
    assert (
        messages.localize(at_least.format(min=1), ENGLISH) == "Must be greater than or equal to 1."
    )


def test_a_problem_says_title_detail_and_messages_in_the_language_asked() -> None:
    error = field_errors(
        [FieldError("name", Said("must not be empty", "不能为空")), FieldError("x", "odd")]
    )
    zh: dict[str, Any] = error.problem(CHINESE)
    assert zh["title"] == "请求无效" and zh["code"] == "validation_error"
    assert zh["errors"] == [
        {"field": "name", "message": "不能为空"},
        {"field": "x", "message": messages.FIELD_FALLBACK_ZH},
    ]
    assert zh["detail"].startswith("name：不能为空")
    en = error.problem(ENGLISH)
    assert en["detail"] == "name: must not be empty; x: odd" and en["errors"][1]["message"] == "odd"
    plain = ApiError("not_found", "No such thing").problem(CHINESE)
    assert plain["detail"] == plain["title"] == "未找到"
