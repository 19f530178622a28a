"""Problems speak the caller's language (docs/api.md): with Accept-Language zh, a problem's
title, detail and every errors[].message are Chinese — marshmallow's own messages and
the service's alike — while code and field are the same as in English. Walked over the
live route table, so an operation added later is covered without touching this file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.domain.errors import CODES
from service.domain.messages import FIELD_FALLBACK_ZH, TITLES_ZH
from tests.api.test_bad_input import (
    Callers,
    alternatives,
    body_with,
    json_operations,
    send,
)


@pytest.fixture
async def document(client: TestClient) -> dict[str, Any]:
    return await (await client.get("/openapi.json")).json()


@pytest.fixture
async def callers(client: TestClient, db, settings, admin) -> Callers:
    return await Callers(client, db, settings, admin).open()


ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en"}


def bad_bodies(doc: dict[str, Any], schema: dict[str, Any]) -> list[bytes]:
    """Bodies each of which some check refuses: nothing, an unknown field, JSON that is not
    an object, not JSON, and per property a wrong type, a value too long, too large, too
    small, or not among its choices."""
    bodies: list[Any] = [{}, {"surely_unknown": 1}, [], "text", {"a": {"b": None}}]
    for alternative in alternatives(doc, schema):
        for name, prop in alternative.get("properties", {}).items():
            kind = prop.get("type")
            bodies.append(body_with(name, None))
            bodies.append(body_with(name, {"nested": True} if kind != "object" else 5))
            bodies.append(body_with(name, "text" if kind in ("integer", "number") else 12))
            if kind == "integer":
                bodies.append(body_with(name, True))
                bodies.append(body_with(name, 1.5))
            if "maxLength" in prop:
                bodies.append(body_with(name, "字" * (prop["maxLength"] + 1)))
            if prop.get("minLength", 0) > 1:
                bodies.append(body_with(name, "x"))
            if "maximum" in prop:
                bodies.append(body_with(name, prop["maximum"] + 1))
            if "minimum" in prop:
                bodies.append(body_with(name, prop["minimum"] - 1))
            if "enum" in prop:
                bodies.append(body_with(name, "not-a-choice"))
            if "pattern" in prop:
                bodies.append(body_with(name, "!"))
            if kind == "array":
                bodies.append(body_with(name, ["not-a-choice", 7]))
    raw = [json.dumps(body).encode() for body in bodies]
    return [*raw, b"{not json", b'{"a": 1, "a": 2}']


def is_english(text: str) -> bool:
    """Text with no Chinese in it (what a Chinese caller must never be shown)."""
    return text.isascii()


async def test_every_refused_body_is_said_in_chinese_with_the_same_code_and_fields(
    client: TestClient,
    document,
    callers: Callers,
) -> None:
    problems = messages = 0
    untranslated: set[tuple[str, str]] = set()
    for op in json_operations(client, document):
        headers = callers.for_operation(op)
        if headers is None:
            continue
        path = op.path(callers.ids)
        for raw in bad_bodies(document, op.schema):
            english = await send(client, op.method, path, raw, {**headers, **EN})
            if english.status < 400:
                continue
            chinese = await send(client, op.method, path, raw, {**headers, **ZH})
            said, zh = await english.json(), await chinese.json()
            where = (op.method, op.template, raw, zh)
            assert chinese.status == english.status and zh["code"] == said["code"], where
            assert not is_english(zh["title"]) and not is_english(zh["detail"]), where
            assert [e["field"] for e in zh.get("errors", [])] == [
                e["field"] for e in said.get("errors", [])
            ], where
            if zh["detail"] == zh["title"] and said["detail"] != said["title"]:
                untranslated.add(("detail", said["detail"]))
            for error, english_error in zip(
                zh.get("errors", []), said.get("errors", []), strict=True
            ):
                assert not is_english(error["message"]), where
                if error["message"] == FIELD_FALLBACK_ZH != english_error["message"]:
                    untranslated.add(("message", english_error["message"]))
                messages += 1
            assert "Accept-Language" in chinese.headers.get("Vary", ""), where
            problems += 1
    # Nothing said only by the fallbacks: each text has Chinese of its own.
    assert not untranslated, "\n".join(map(repr, sorted(untranslated)))
    assert problems >= 300 and messages >= 300, (problems, messages)


async def test_marshmallows_messages_are_translated_by_their_key(client: TestClient, admin):
    """Missing, unknown, wrong type, too long, out of range: each in Chinese, the English
    unchanged for an English caller."""
    body = {"name": "x" * 201, "category": "nope", "contact_phone": 5, "surely_unknown": 1}
    chinese = await client.post("/v1/partners", json=body, headers={**admin, **ZH})
    english = await client.post("/v1/partners", json=body, headers={**admin, **EN})
    zh, en = await chinese.json(), await english.json()
    assert chinese.status == english.status == 422
    by_field = {e["field"]: e["message"] for e in zh["errors"]}
    en_by_field = {e["field"]: e["message"] for e in en["errors"]}
    assert by_field.keys() == en_by_field.keys()
    assert by_field["surely_unknown"] == "未知字段。"
    assert en_by_field["surely_unknown"] == "Unknown field."
    assert en_by_field["name"] == "Length must be between 1 and 200."
    assert "200" in by_field["name"] and not is_english(by_field["name"])
    assert zh["title"] == "请求无效" and en["title"] == "The request is not valid"
    missing = await client.post("/v1/partners", json={}, headers={**admin, **ZH})
    assert {"field": "name", "message": "缺少必填字段。"} in (await missing.json())["errors"]
    number = await client.get("/v1/partners?limit=500", headers={**admin, **ZH})
    [limit] = (await number.json())["errors"]
    assert limit["field"] == "limit" and "200" in limit["message"]
    assert not is_english(limit["message"])
    word = await client.get("/v1/partners?limit=many", headers={**admin, **ZH})
    assert (await word.json())["errors"] == [{"field": "limit", "message": "不是有效的整数。"}]


async def test_english_stays_the_default_and_other_problems_speak_chinese_too(
    client: TestClient, admin
) -> None:
    plain = await client.get("/v1/partners/ptn_unknown000000000", headers=admin)
    assert (await plain.json())["title"] == "Not found"
    french = await client.get(
        "/v1/partners/ptn_unknown000000000", headers={**admin, "Accept-Language": "fr"}
    )
    assert (await french.json())["title"] == "Not found"
    zh = await (
        await client.get("/v1/partners/ptn_unknown000000000", headers={**admin, **ZH})
    ).json()
    assert zh["code"] == "not_found" and not is_english(zh["title"] + zh["detail"])
    who = await (await client.get("/v1/partners", headers=ZH)).json()
    assert who["code"] == "unauthenticated" and not is_english(who["detail"])


def test_every_problem_code_has_a_chinese_title() -> None:
    assert TITLES_ZH.keys() == CODES.keys()
    assert not any(is_english(title) for title in TITLES_ZH.values())
