"""Bad input never answers 5xx (issue 14), proven over the live route table and
/openapi.json: every JSON operation, every string field of its request schema, every
public route. A route added later is covered without touching this file."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.api.http import operation_of
from service.domain.auth import Role
from tests.helpers import Till, bearer, make_holder, make_key, make_partner

SURROGATE = "\ud800"
#: A lone surrogate as JSON text: json.dumps writes "\\ud800", which is valid JSON.
SURROGATE_JSON = json.dumps(SURROGATE)


@dataclass(frozen=True)
class JsonOperation:
    method: str
    template: str
    roles: tuple[Role, ...]
    schema: dict[str, Any]

    def path(self, ids: dict[str, str]) -> str:
        return self.template.format_map(_Ids(ids))


class _Ids(dict):
    def __missing__(self, key: str) -> str:
        return f"{key.split('_')[0][:3]}_unknown0000000000"


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def json_operations(client: TestClient, document: dict[str, Any]) -> Iterator[JsonOperation]:
    """Every operation of the live document whose body is JSON, with its roles."""
    roles = {}
    for route in client.app.router.routes():
        op = operation_of(route.handler)
        if op is not None:
            roles[(route.method.lower(), route.resource.canonical)] = op.roles
    for template, operations in document["paths"].items():
        for method, spec in operations.items():
            content = spec.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = resolve(document, content["application/json"]["schema"])
                yield JsonOperation(method, template, roles[(method, template)], schema)


def alternatives(document: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema and every schema of its oneOf and anyOf (an offer body's kinds), resolved."""
    found, stack = [], [resolve(document, schema)]
    while stack:
        schema = stack.pop()
        found.append(schema)
        for branch in (*schema.get("oneOf", ()), *schema.get("anyOf", ())):
            stack.append(resolve(document, branch))
    return found


def string_fields(document: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> list:
    """Dotted names of every string property (nested objects and alternatives included)."""
    names: list[str] = []
    for alternative in alternatives(document, schema):
        for name, prop in alternative.get("properties", {}).items():
            prop = resolve(document, prop)
            if prop.get("readOnly"):
                continue
            if prop.get("type") == "string":
                found = [prefix + name]
            elif prop.get("type") == "object" or "properties" in prop:
                found = string_fields(document, prop, f"{prefix}{name}.")
            else:
                continue
            names.extend(name for name in found if name not in names)
    return names


def body_with(field: str, value: Any) -> dict[str, Any]:
    body: dict[str, Any] = {}
    *parents, last = field.split(".")
    inner = body
    for parent in parents:
        inner = inner.setdefault(parent, {})
    inner[last] = value
    return body


class Callers:
    """Headers of a caller of each role, made once per test."""

    def __init__(self, client: TestClient, db: asyncpg.Connection, settings, admin) -> None:
        self.client, self.db, self.settings, self.admin = client, db, settings, admin
        self._headers: dict[Role, dict[str, str]] = {}
        self.ids: dict[str, str] = {}

    async def open(self) -> Callers:
        till = await Till(self.db, self.settings).open(holder={"card_number": "BAD-INPUT-1"})
        self.ids = {
            "partner_id": till.partner_id,
            "offer_id": till.offer_id,
            "holder_id": till.holder_id,
            "voucher_id": till.voucher_id,
        }
        session = await self.client.post(
            "/v1/holder-sessions", json={"card_number": "BAD-INPUT-1", "pin": "204816"}
        )
        assert session.status == 201
        self._headers = {
            Role.ADMIN: self.admin,
            Role.PARTNER: till.partner,
            Role.SCANNER: till.scanner,
            Role.HOLDER: bearer((await session.json())["token"]),
        }
        return self

    def for_operation(self, op: JsonOperation) -> dict[str, str] | None:
        """A caller the operation lets in; None for a role this test cannot make yet."""
        if not op.roles:
            return {}
        for role in op.roles:
            if role in self._headers:
                return {**self._headers[role], "Idempotency-Key": "bad-input-test"}
        return None


@pytest.fixture
async def document(client: TestClient) -> dict[str, Any]:
    return await (await client.get("/openapi.json")).json()


@pytest.fixture
async def callers(client: TestClient, db, settings, admin) -> Callers:
    return await Callers(client, db, settings, admin).open()


async def send(client: TestClient, method: str, path: str, body: bytes, headers: dict[str, str]):
    return await client.request(
        method, path, data=body, headers={"Content-Type": "application/json", **headers}
    )


def assert_problem(response, status: int, code: str, body: dict[str, Any]) -> None:
    assert response.status == status, body
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.headers.get("X-Request-ID")
    assert body["code"] == code, body


# --- line 1: lone surrogates, in values and keys -------------------------------------------


async def test_a_lone_surrogate_in_any_string_field_of_any_json_operation_is_422(
    client: TestClient, document, callers: Callers
) -> None:
    checked = 0
    for op in json_operations(client, document):
        headers = callers.for_operation(op)
        if headers is None:
            continue
        for field in string_fields(document, op.schema):
            raw = json.dumps(body_with(field, SURROGATE)).encode()
            assert SURROGATE_JSON.encode() in raw
            response = await send(client, op.method, op.path(callers.ids), raw, headers)
            body = await response.json()
            assert_problem(response, 422, "validation_error", body)
            assert {"field": field, "message": body["errors"][0]["message"]} in body["errors"], (
                op.method,
                op.template,
                field,
                body,
            )
            checked += 1
    assert checked >= 19  # the 19 fields of the issue, and every later one


async def test_a_lone_surrogate_as_a_key_of_any_json_operation_is_422(
    client: TestClient, document, callers: Callers
) -> None:
    checked = 0
    for op in json_operations(client, document):
        headers = callers.for_operation(op)
        if headers is None:
            continue
        for raw in (b'{"\\ud800": 1}', b'{"a": {"\\udfff": 1}}'):
            response = await send(client, op.method, op.path(callers.ids), raw, headers)
            body = await response.json()
            assert_problem(response, 422, "validation_error", body)
            assert "\\ud" in body["errors"][0]["field"], body
            checked += 1
    assert checked >= 2 * 13


async def test_the_sign_in_of_the_issue_answers_422_naming_card_number(client) -> None:
    response = await client.post(
        "/v1/holder-sessions",
        data=b'{"card_number": "\\ud800", "pin": "1234"}',
        headers={"Content-Type": "application/json"},
    )
    body = await response.json()
    assert_problem(response, 422, "validation_error", body)
    assert body["errors"][0]["field"] == "card_number"


# --- line 2: the error middleware cannot fail ------------------------------------------------


async def test_a_failing_problem_renderer_still_answers_problem_json_with_a_request_id(
    client: TestClient, monkeypatch
) -> None:
    from service.api import middleware

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the renderer is broken")

    monkeypatch.setattr(middleware, "problem_response", broken)
    response = await client.get("/nowhere", headers={"X-Request-ID": "last-resort-1"})
    assert response.status == 500
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.headers["X-Request-ID"] == "last-resort-1"
    assert (await response.json())["code"] == "internal_error"


# --- line 3: deep nesting ----------------------------------------------------------------------


@pytest.mark.parametrize("levels", [65, 1_000, 10_000, 500_000])
async def test_json_nested_deeper_than_64_levels_is_422_on_every_json_operation(
    client: TestClient, document, callers: Callers, levels: int
) -> None:
    raw = b"[" * levels + b"]" * levels
    assert len(raw) <= 1024 * 1024
    deep_object = b'{"a":' * min(levels, 150_000) + b"1" + b"}" * min(levels, 150_000)
    checked = 0
    for op in json_operations(client, document):
        headers = callers.for_operation(op)
        if headers is None:
            continue
        for body in (raw, deep_object):
            response = await send(client, op.method, op.path(callers.ids), body, headers)
            assert_problem(response, 422, "validation_error", await response.json())
        checked += 1
    assert checked >= 13  # every JSON operation of today, and every later one


async def test_json_nested_64_levels_is_parsed(client: TestClient) -> None:
    nested = "[" * 63 + "]" * 63
    response = await client.post(
        "/v1/holder-sessions",
        data=f'{{"card_number": {json.dumps("x")}, "pin": "1", "extra": {nested}}}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    body = await response.json()
    assert response.status == 422
    assert "nested" not in body["detail"] and body["errors"][0]["field"] == "extra"


# --- line 4: header bytes and sizes ----------------------------------------------------------


async def raw_request(
    client: TestClient, head: bytes, body: bytes = b""
) -> tuple[int, dict, bytes]:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head + b"\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    header_block, _, payload = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        headers[name.decode().strip().lower()] = value.decode("latin-1").strip()
    return int(status_line.split()[1]), headers, payload


async def test_an_idempotency_key_of_raw_non_ascii_bytes_is_422(client: TestClient, db) -> None:
    scanner = bearer(await make_key(db, Role.SCANNER, await make_partner(db)))
    body = b'{"token": "x", "purchase_amount": 100}'
    head = (
        b"POST /v1/redemptions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n"
        + f"Authorization: {scanner['Authorization']}\r\n".encode()
        + b"Idempotency-Key: \xc3\x28\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
    )
    status, headers, payload = await raw_request(client, head, body)
    assert status == 422, payload
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(payload)
    assert problem["code"] == "validation_error"
    assert problem["errors"][0]["field"].lower() == "idempotency-key"


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (b"User-Agent: caf\xc3\xa9", 422),
        (b"X-Junk: \xff\xfe", 422),
        # Control characters are refused by aiohttp's parser already: a 400 problem.
        (b"X-Junk: \x01\x02", 400),
    ],
)
async def test_any_header_that_is_not_printable_ascii_is_a_4xx_problem(
    client: TestClient, header: bytes, status: int
) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header + b"\r\n"
    answered, headers, payload = await raw_request(client, head)
    assert answered == status, payload
    assert headers["content-type"].startswith("application/problem+json")
    assert headers.get("x-request-id")
    assert json.loads(payload)["code"] == ("validation_error" if status == 422 else "bad_request")


async def test_an_oversized_header_is_a_problem_not_plain_text(client: TestClient) -> None:
    head = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + b"X-Big: "
        + b"a" * 20_000
        + b"\r\n"
    )
    status, headers, payload = await raw_request(client, head)
    assert status in (400, 431), payload
    assert headers["content-type"].startswith("application/problem+json"), payload
    assert json.loads(payload)["status"] == status


# --- line 5: dates out of range on every list ------------------------------------------------


async def test_dates_outside_the_supported_range_are_422_on_every_list(
    client: TestClient, document, admin
) -> None:
    lists = [
        template
        for template, operations in document["paths"].items()
        if "get" in operations
        and "{" not in template
        and {p.get("name") for p in _query_parameters(document, operations["get"])} >= {"from"}
    ]
    assert "/v1/redemptions" in lists and "/v1/audit-events" in lists
    for template in lists:
        for query in (
            "from=0001-01-01",
            "to=9999-12-31",
            "from=0001-01-01T00:00:00+00:00",
            "to=9999-12-31T23:59:59-14:00",
            "from=2026-02-01&to=2026-01-01",
        ):
            response = await client.get(f"{template}?{query}", headers=admin)
            body = await response.json()
            assert_problem(response, 422, "validation_error", body)


def _query_parameters(document: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in spec.get("parameters", []) if p.get("in") == "query"]


# --- line 6: tokens with overflowing or overlong lifetimes (service's own key) -------------


@pytest.mark.parametrize("lifetime", [2**70, 10**12, "ttl+leeway+1"])
async def test_a_token_signed_by_the_service_with_an_impossible_lifetime_is_invalid(
    client: TestClient, db, settings, lifetime
) -> None:
    import time

    from service.app_keys import KEYRING
    from tests.unit.test_tokens import sign_claims

    till = await Till(db, settings).open()
    key = await client.app[KEYRING].signing_key(db)
    now = int(time.time())
    exp = (
        now + settings.token_ttl + 5 + 1
        if lifetime == "ttl+leeway+1"
        else (lifetime if lifetime > 10**15 else now + lifetime)
    )
    claims = {
        "iss": settings.issuer,
        "aud": till.partner_id,
        "sub": till.voucher_id,
        "jti": "j1",
        "iat": now,
        "nbf": now,
        "exp": exp,
    }
    token = sign_claims(key, claims)
    for path in ("/v1/redemptions/preview", "/v1/redemptions"):
        response = await client.post(
            path,
            json={"token": token, "purchase_amount": 1000},
            headers={**till.scanner, "Idempotency-Key": f"k-{path}"},
        )
        assert_problem(response, 422, "token_invalid", await response.json())


# --- line 7: other content types are 415 --------------------------------------------------


async def test_json_operations_refuse_other_content_types_with_415(
    client: TestClient, document, callers: Callers
) -> None:
    checked = 0
    for op in json_operations(client, document):
        headers = callers.for_operation(op)
        if headers is None:
            continue
        path = op.path(callers.ids)
        for content_type in ("text/plain", "application/xml", "application/json; charset=latin-1"):
            response = await client.request(
                op.method, path, data=b"{}", headers={**headers, "Content-Type": content_type}
            )
            assert_problem(response, 415, "unsupported_media_type", await response.json())
        response = await client.request(op.method, path, headers=headers)  # no Content-Type
        assert_problem(response, 415, "unsupported_media_type", await response.json())
        response = await client.request(
            op.method,
            path,
            data=b"{}",
            headers={**headers, "Content-Type": "application/json; charset=utf-8"},
        )
        assert response.status != 415
        checked += 1
    assert checked >= 13  # every JSON operation of today, and every later one


async def test_a_cross_site_simple_post_to_sign_in_is_refused_before_any_attempt(
    client: TestClient, db
) -> None:
    await make_holder(db, card_number="CSRF-1")
    for _ in range(6):
        response = await client.post(
            "/v1/holder-sessions",
            data=b'{"card_number": "CSRF-1", "pin": "000000"}',
            headers={"Content-Type": "text/plain"},
        )
        assert response.status == 415
    ok = await client.post("/v1/holder-sessions", json={"card_number": "CSRF-1", "pin": "204816"})
    assert ok.status == 201  # the card was never locked


# --- line 8: public routes ignore Authorization -------------------------------------------


def public_paths(client: TestClient) -> list[str]:
    """A GET path of every route that needs no key, static files included."""
    paths = []
    for route in client.app.router.routes():
        if route.method != "GET":
            continue
        info = route.resource.get_info()
        if "directory" in info:  # static files: one real file of the folder
            first = sorted(p for p in info["directory"].rglob("*") if p.is_file())[0]
            relative = first.relative_to(info["directory"]).as_posix()
            paths.append(f"{info['prefix']}/{relative}")
            continue
        op = operation_of(route.handler)
        if (op is None or not op.roles) and "{" not in route.resource.canonical:
            paths.append(route.resource.canonical + _required_query(op))
    return paths


def _required_query(op) -> str:
    """A query naming each required parameter (a page that needs its secret link's token
    gets one that opens nothing: the answer must still not depend on Authorization)."""
    schema = getattr(op, "query", None) if op is not None else None
    if schema is None:
        return ""
    fields = schema().fields if isinstance(schema, type) else schema.fields
    required = [f.data_key or name for name, f in fields.items() if f.required]
    return "?" + "&".join(f"{name}=unknown" for name in required) if required else ""


@pytest.mark.parametrize("authorization", ["Bearer garbage", "Basic abc", "Bearer yd_revoked"])
async def test_public_routes_ignore_any_authorization_header(
    client: TestClient, db, authorization: str
) -> None:
    paths = public_paths(client)
    for expected in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/scan"):
        assert expected in paths
    assert any(p.startswith("/docs/static/") for p in paths)
    for path in paths:
        plain = await client.get(path)
        with_header = await client.get(path, headers={"Authorization": authorization})
        assert with_header.status == plain.status, (path, with_header.status)
        assert with_header.status < 400 or "=unknown" in path, path
    await make_holder(db, card_number="PUBLIC-1")
    session = await client.post(
        "/v1/holder-sessions",
        json={"card_number": "PUBLIC-1", "pin": "204816"},
        headers={"Authorization": authorization},
    )
    assert session.status == 201


# --- line 11: no request values in error logs --------------------------------------------


async def test_an_unexpected_error_logs_no_request_values(
    client: TestClient, monkeypatch, caplog
) -> None:
    from service.flows import sign_in as sign_in_flow

    async def broken(pool, card_number, pin, tz, **kwargs):
        raise ValueError(f"cannot handle card {card_number} with pin {pin}")

    monkeypatch.setattr(sign_in_flow, "sign_in", broken)
    caplog.set_level(logging.DEBUG)
    response = await client.post(
        "/v1/holder-sessions", json={"card_number": "YD-SECRET-4711", "pin": "918273"}
    )
    assert response.status == 500
    assert (await response.json())["code"] == "internal_error"
    errors = [r for r in caplog.records if r.name == "youdai.error"]
    assert errors and errors[0].exception == "ValueError"
    from service.logs import JsonFormatter

    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "YD-SECRET-4711" not in text and "918273" not in text
    assert "create_session" in text  # where it happened is still logged


# --- line 14: headers of /docs and every answer ------------------------------------------


async def test_docs_send_nosniff_and_frame_ancestors_and_server_names_no_version(
    client: TestClient,
) -> None:
    for path in ("/docs", "/docs/init.js", "/healthz", "/nowhere"):
        response = await client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Server"] == "youdai", path
        assert not any(ch.isdigit() for ch in response.headers["Server"])
    docs = await client.get("/docs")
    assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]


# --- line 13: a fixed path is never routed as another route's {id} -------------------------


async def test_any_method_a_fixed_path_lacks_is_405_allowing_only_that_paths_methods(
    client: TestClient, admin
) -> None:
    """Also when a sibling template has the method: GET /v1/holders/import is not the
    holder "import" of GET /v1/holders/{holder_id}."""
    methods: dict[str, set[str]] = {}
    for route in client.app.router.routes():
        canonical = route.resource.canonical
        if "{" not in canonical and "directory" not in route.resource.get_info():
            methods.setdefault(canonical, set()).add(route.method)
    assert methods["/v1/holders/import"] == {"POST"}
    checked = 0
    for path, allowed in methods.items():
        for method in {"GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"} - allowed:
            response = await client.request(method, path, headers=admin)
            assert response.status == 405, (method, path)
            assert response.headers["Content-Type"].startswith("application/problem+json")
            assert (await response.json())["code"] == "method_not_allowed"
            assert set(response.headers["Allow"].split(",")) == allowed, (method, path)
            checked += 1
    assert checked > len(methods)


async def test_get_of_the_holder_import_path_is_405_and_holders_are_still_found_by_id(
    client: TestClient, admin, db
) -> None:
    response = await client.get("/v1/holders/import", headers=admin)
    assert_problem(response, 405, "method_not_allowed", await response.json())
    assert response.headers["Allow"] == "POST"
    holder_id = await make_holder(db, card_number="IMPORT-SIBLING-1")
    found = await client.get(f"/v1/holders/{holder_id}", headers=admin)
    assert found.status == 200
    assert (await found.json())["card_number"] == "IMPORT-SIBLING-1"
