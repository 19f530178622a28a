"""Every display-text field of every request schema carries the one check of display text
(docs/api.md: no control characters, no bidirectional overrides or isolates). Fields are found
by name, so a new name, title, label, reason or address without the check fails here."""

from __future__ import annotations

import re

import pytest
from marshmallow import fields

from schemas.common import DisplayText
from service.domain import holders
from service.domain.text import DISPLAY_TEXT_PATTERN, display_text_problem
from tests.unit.test_problem_messages import strict_schemas

#: A request field is display text when its name says a page shows it as written.
DISPLAY_FIELD = re.compile(
    r"(^|_)(name|title|label|reason|address|region|description|phone|reference|comment|note)$"
)


def display_text_fields() -> dict[str, fields.Field]:
    found = {}
    for klass in strict_schemas():
        for name, field in klass().fields.items():
            key = field.data_key or name
            if isinstance(field, fields.String) and DISPLAY_FIELD.search(key):
                found[f"{klass.__name__}.{key}"] = field
    return found


def test_every_display_text_field_of_every_request_schema_is_checked() -> None:
    found = display_text_fields()
    assert len(found) >= 15, sorted(found)  # partners, keys, staff, holders, offers, reversals
    unchecked = [
        name
        for name, field in found.items()
        if not any(isinstance(validator, DisplayText) for validator in field.validators)
    ]
    assert unchecked == []


@pytest.mark.parametrize(
    "text",
    [
        *("abc\u202eexe.txt", "\u202a", "\u202b", "\u202c", "\u202d"),
        *("\u2066", "\u2067", "\u2068", "\u2069"),
        *("a\tb", "a\nb", "\x00", "\x1f", "\x7f", "\x80", "\x9f"),
    ],
)
def test_hidden_characters_are_refused_in_one_place(text: str) -> None:
    assert display_text_problem(text) is not None
    assert not re.fullmatch(DISPLAY_TEXT_PATTERN[1:-1], text)
    with pytest.raises(ValueError):
        holders.check_display_name(f"王{text}王")  # the CSV import's check is the same one


@pytest.mark.parametrize("text", ["区邮政分公司", "Café (东城) – 2nd floor", "李娜", "", "\u200b"])
def test_ordinary_text_passes(text: str) -> None:
    assert display_text_problem(text) is None
    assert re.fullmatch(DISPLAY_TEXT_PATTERN[1:-1], text)


def test_a_description_may_break_lines_but_hides_nothing() -> None:
    assert display_text_problem("line one\nline two\r\n\tindented", multiline=True) is None
    assert display_text_problem("line\u202eone", multiline=True) is not None
    assert display_text_problem("bell\x07", multiline=True) is not None
