"""Every error is application/problem+json with a stable code; bad input is never a 5xx."""

import json
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


async def problem(response, status: int, code: str) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert body["code"] == code
    assert body["status"] == status
    return body


async def test_unknown_path_is_problem_not_found(client: TestClient) -> None:
    await problem(await client.get("/no/such/thing"), 404, "not_found")


async def test_wrong_method_is_problem_with_allow_header(client: TestClient) -> None:
    response = await client.put("/healthz")
    await problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


async def test_json_body_over_one_mebibyte_is_validation_error(client: TestClient, admin) -> None:
    body = json.dumps({"name": "x" * (1024 * 1024 + 10), "category": "postal"})
    response = await client.post(
        "/v1/partners", data=body, headers={**admin, "Content-Type": "application/json"}
    )
    problem_body = await problem(response, 422, "validation_error")
    assert problem_body["errors"] == [{"field": "body", "message": "The body is larger than 1 MiB"}]


async def test_aiohttp_own_413_is_a_problem_too(database_url, settings, aiohttp_client) -> None:
    """A body read past client_max_size outside read_json still answers problem+json."""

    async def reads_raw(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="read")

    app = create_app(settings, database_url)
    app.router.add_post("/raw", reads_raw)
    raw_client = await aiohttp_client(app)
    response = await raw_client.post("/raw", data=b"x" * (1024 * 1024 + 10))
    await problem(response, 413, "payload_too_large")


async def test_non_json_body_is_validation_error(client: TestClient, admin) -> None:
    body = await problem(
        await client.post(
            "/v1/partners",
            data="name=post",
            headers={**admin, "Content-Type": "application/json"},
        ),
        422,
        "validation_error",
    )
    assert body["errors"][0]["field"] == "body"


async def test_json_that_is_not_an_object_is_validation_error(client: TestClient, admin) -> None:
    await problem(
        await client.post("/v1/partners", json=[1, 2], headers=admin), 422, "validation_error"
    )


async def test_unknown_fields_and_wrong_types_are_each_named(client: TestClient, admin) -> None:
    response = await client.post(
        "/v1/partners",
        json={"name": 12, "category": "postal", "surprise": True, "contact_phone": ["1"]},
        headers=admin,
    )
    body = await problem(response, 422, "validation_error")
    named = {error["field"] for error in body["errors"]}
    assert named == {"name", "surprise", "contact_phone"}
    assert all(error["message"] for error in body["errors"])


async def test_boolean_is_not_accepted_as_an_integer(client: TestClient, admin) -> None:
    body = await problem(
        await client.get("/v1/partners?limit=true", headers=admin), 422, "validation_error"
    )
    assert body["errors"][0]["field"] == "limit"


async def test_repeated_query_parameter_is_refused(client: TestClient, admin) -> None:
    await problem(
        await client.get("/v1/partners?limit=1&limit=2", headers=admin), 422, "validation_error"
    )


async def test_garbage_cursor_is_validation_error(client: TestClient, admin) -> None:
    body = await problem(
        await client.get("/v1/partners?cursor=%%%", headers=admin), 422, "validation_error"
    )
    assert body["errors"][0]["field"] == "cursor"


@pytest.fixture
async def exploding_client(database_url, settings, aiohttp_client) -> TestClient:
    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals: /etc/passwd")

    app = create_app(settings, database_url)
    app.router.add_get("/explode", explode)
    return await aiohttp_client(app)


async def test_unexpected_exception_is_500_internal_error_without_traceback(
    exploding_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await exploding_client.get("/explode", headers={"X-Request-ID": "trace-me-42"})
    body = await problem(response, 500, "internal_error")
    text = json.dumps(body)
    assert "Traceback" not in text and "secret internals" not in text
    assert "trace-me-42" in body["detail"]
    logged = [r for r in caplog.records if r.name == "youdai.error"]
    assert logged and logged[0].request_id == "trace-me-42"
    # Logged by type and place, never by message (it may quote request values).
    assert logged[0].exception and logged[0].stack
    assert "secret internals" not in json.dumps(logged[0].__dict__, default=str)


async def test_nul_characters_are_bad_input_not_server_errors(client: TestClient, admin) -> None:
    assert (await client.get("/v1/partners/%00", headers=admin)).status == 404
    response = await client.post(
        "/v1/partners", json={"name": "a\u0000b", "category": "postal"}, headers=admin
    )
    body = await problem(response, 422, "validation_error")
    assert body["errors"][0]["field"] == "name"
    query = await client.get("/v1/partners?q=a%00b", headers=admin)
    await problem(query, 422, "validation_error")
