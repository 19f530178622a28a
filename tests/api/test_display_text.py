"""Display text (docs/api.md): names, titles, labels, reasons, addresses and the like are
refused with validation_error when they hold control characters or bidirectional
overrides/isolates (U+202A–U+202E, U+2066–U+2069), on every operation that takes them.
Walked over the live route table and the request schemas, so a display-text field added
later without the check fails here."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.test_bad_input import Callers, alternatives, body_with, json_operations, send
from tests.unit.test_display_text_fields import DISPLAY_FIELD

#: One of each kind docs/api.md names, and the tab and newline partner names took.
HIDDEN = [
    "abc\u202eexe.txt",  # right-to-left override: shows as "abctxt.exe"
    "\u202aleft\u202c",
    "isolate\u2066x\u2069",
    "\u2067rtl isolate",
    "\u2068first strong",
    "tab\tin a name",
    "new\nline",
    "carriage\rreturn",
    "bell\x07inside",
    "del\x7finside",
    "c1\x85inside",
]


@pytest.fixture
async def document(client: TestClient) -> dict[str, Any]:
    return await (await client.get("/openapi.json")).json()


@pytest.fixture
async def callers(client: TestClient, db, settings, admin) -> Callers:
    return await Callers(client, db, settings, admin).open()


def display_fields(doc: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    return {
        name
        for alternative in alternatives(doc, schema)
        for name, prop in alternative.get("properties", {}).items()
        if prop.get("type") == "string" and DISPLAY_FIELD.search(name)
    }


async def test_hidden_characters_in_any_display_text_field_are_refused(
    client: TestClient, document, callers: Callers
) -> None:
    checked: set[tuple[str, str, str]] = set()
    for op in json_operations(client, document):
        headers = callers.for_operation(op)
        if headers is None:
            continue
        for field in sorted(display_fields(document, op.schema)):
            multiline = field == "description"
            for value in HIDDEN:
                if multiline and value in ("new\nline", "tab\tin a name", "carriage\rreturn"):
                    continue  # a description may break lines
                raw = json.dumps(body_with(field, value)).encode()
                response = await send(client, op.method, op.path(callers.ids), raw, headers)
                body = await response.json()
                where = (op.method, op.template, field, value, body)
                assert response.status == 422 and body["code"] == "validation_error", where
                assert field in [error["field"] for error in body["errors"]], where
            checked.add((op.method, op.template, field))
    fields = {field for _, _, field in checked}
    # partners, keys, staff, holders, offers, reversals: every kind docs/api.md names
    assert {
        "name",
        "contact_name",
        "address",
        "label",
        "display_name",
        "region",
        "title",
        "reason",
    } <= fields, sorted(checked)


async def test_a_partner_named_with_an_override_is_not_stored(client: TestClient, admin) -> None:
    for name in ("abc\u202eexe.txt", "区邮政\t分公司", "区邮政\n分公司"):
        response = await client.post(
            "/v1/partners", json={"name": name, "category": "postal"}, headers=admin
        )
        assert response.status == 422, name
        assert (await response.json())["errors"][0]["field"] == "name"
    plain = await client.post(
        "/v1/partners", json={"name": "区邮政分公司 (东城)", "category": "postal"}, headers=admin
    )
    assert plain.status == 201


async def test_a_staff_name_given_on_the_command_line_is_checked_too(db) -> None:
    """`youdai create-staff --name` reaches the use case without a schema."""
    from service.domain.auth import StaffRole
    from service.domain.errors import ApiError
    from service.flows import staff as staff_flow

    with pytest.raises(ApiError) as refused:
        await staff_flow.invite(
            db,
            None,
            email="ops@bureau.example",
            role=StaffRole.BUREAU_ADMIN,
            display_name="ops\u202eadmin",
        )
    assert refused.value.code == "validation_error"
    assert [error.field for error in refused.value.errors] == ["display_name"]
    assert await db.fetchval("SELECT count(*) FROM staff_accounts") == 0
