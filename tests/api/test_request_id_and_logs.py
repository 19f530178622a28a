"""X-Request-ID on every answer; one JSON object per log line; no secrets in logs."""

import io
import json
import logging

import pytest
from aiohttp.test_utils import TestClient

from service.logs import JsonFormatter, configure_logging


async def test_request_id_is_generated_when_absent(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert len(response.headers["X-Request-ID"]) >= 16


async def test_request_id_is_echoed_when_given(client: TestClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "till-7:abc-123"})
    assert response.headers["X-Request-ID"] == "till-7:abc-123"


async def test_request_id_is_on_problems_too(client: TestClient) -> None:
    response = await client.get("/nowhere", headers={"X-Request-ID": "abc"})
    assert response.headers["X-Request-ID"] == "abc"


async def test_any_printable_request_id_is_echoed(client: TestClient) -> None:
    trace_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for given in ("till 7 / receipt 0042", trace_parent):
        response = await client.get("/healthz", headers={"X-Request-ID": given})
        assert response.headers["X-Request-ID"] == given


async def test_an_unsafe_request_id_is_replaced(client: TestClient) -> None:
    for given in ("bad id\twith a tab", "x" * 201):
        response = await client.get("/healthz", headers={"X-Request-ID": given})
        assert response.headers["X-Request-ID"] != given
        assert len(response.headers["X-Request-ID"]) >= 16


@pytest.fixture
def json_log() -> io.StringIO:
    """Capture what the service logs, formatted exactly as in production."""
    configure_logging("json", "INFO")
    stream = io.StringIO()
    root = logging.getLogger()
    handler = root.handlers[0]
    handler.setStream(stream)
    yield stream
    configure_logging("json", "INFO")


async def test_access_log_is_one_json_object_per_line_with_request_fields(
    client: TestClient, json_log: io.StringIO
) -> None:
    await client.get("/v1/partners/ptn_x", headers={"X-Request-ID": "r-1"})
    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line]
    access = [line for line in lines if line["logger"] == "youdai.access"]
    assert access, lines
    entry = access[-1]
    assert entry["request_id"] == "r-1"
    assert entry["method"] == "GET"
    assert entry["route"] == "/v1/partners/{partner_id}"
    assert entry["status"] == 401
    assert isinstance(entry["duration_ms"], float)


async def test_keys_never_reach_the_logs(client: TestClient, admin, json_log: io.StringIO) -> None:
    secret = admin["Authorization"].split()[1]
    created = await client.post(
        "/v1/partners", json={"name": "Shop", "category": "retail"}, headers=admin
    )
    partner_id = (await created.json())["id"]
    issued = await client.post(
        f"/v1/partners/{partner_id}/keys", json={"role": "scanner"}, headers=admin
    )
    scanner_secret = (await issued.json())["key"]
    await client.get("/v1/partners", headers={"Authorization": f"Bearer {scanner_secret}"})
    await client.get("/v1/partners", headers={"Authorization": "Bearer yd_wrongwrongwrongwrong"})
    logged = json_log.getvalue()
    assert logged
    assert secret not in logged
    assert scanner_secret not in logged
    assert "yd_wrong" not in logged


def test_json_formatter_writes_extra_fields_and_exceptions() -> None:
    record = logging.makeLogRecord({"msg": "hello", "levelname": "INFO", "name": "t"})
    record.route = "/x"
    assert json.loads(JsonFormatter().format(record))["route"] == "/x"
