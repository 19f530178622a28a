"""No password, setup token, TOTP secret or code, session cookie or CSRF token reaches
the logs or the audit log (docs/staff.md), after a whole staff flow."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from aiohttp.test_utils import TestClient

from service.logs import configure_logging
from tests.helpers import make_staff, staff_sign_in


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    configure_logging("json", "DEBUG")
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)
    yield stream
    configure_logging("json", "INFO")


async def test_no_staff_secret_reaches_the_logs_or_the_audit_log(
    client: TestClient, db, debug_log: io.StringIO
) -> None:
    chief = await make_staff(db, "bureau_admin")
    bureau = await staff_sign_in(client, chief.email)
    invited = await client.post(
        "/v1/staff", json={"email": "new@bureau.example", "role": "bureau_admin"}, headers=bureau
    )
    body = await invited.json()
    setup_token = parse_qs(urlsplit(body["setup_url"]).query)["token"][0]
    password = "violet-otter-sings-at-dawn-83"
    refused = "password12345"  # a refused password is not logged either
    await client.post("/v1/staff/setup", json={"setup_token": setup_token, "password": refused})
    await client.post("/v1/staff/setup", json={"setup_token": setup_token, "password": password})
    first = await client.post(
        "/v1/staff-sessions", json={"email": "new@bureau.example", "password": password}
    )
    cookie = first.cookies["youdai_staff"].value
    csrf = (await first.json())["csrf_token"]
    client.session.cookie_jar.clear()
    session = {"Cookie": f"youdai_staff={cookie}", "X-CSRF-Token": csrf}
    totp_secret = (await (await client.post("/v1/staff/me/totp", headers=session)).json())["secret"]
    code = pyotp.TOTP(totp_secret).now()
    await client.post("/v1/staff/me/totp/confirm", json={"code": code}, headers=session)
    await client.delete("/v1/staff-sessions/current", headers=session)
    next_code = pyotp.TOTP(totp_secret).at(time.time() + 30)
    second = await client.post(
        "/v1/staff-sessions",
        json={"email": "new@bureau.example", "password": password, "totp_code": next_code},
    )
    assert second.status == 201, await second.text()
    second_cookie = second.cookies["youdai_staff"].value
    second_csrf = (await second.json())["csrf_token"]
    client.session.cookie_jar.clear()
    await client.post(
        "/v1/staff-sessions", json={"email": "new@bureau.example", "password": password + "x"}
    )
    await client.post(
        "/v1/partners",
        json={"name": "x", "category": "retail"},
        headers={"Cookie": f"youdai_staff={second_cookie}", "X-CSRF-Token": "forged-token"},
    )

    secrets = {
        "password": password,
        "refused password": refused,
        "setup token": setup_token,
        "TOTP secret": totp_secret,
        "TOTP code": code,
        "second TOTP code": next_code,
        "cookie": cookie,
        "second cookie": second_cookie,
        "CSRF token": csrf,
        "second CSRF token": second_csrf,
        "bureau cookie": bureau["Cookie"].split("=", 1)[1],
        "bureau CSRF token": bureau["X-CSRF-Token"],
    }
    logged = debug_log.getvalue()
    audit = str([dict(row) for row in await db.fetch("SELECT * FROM audit_events")])
    assert "staff.invite" in audit and "staff.totp_enable" in audit
    assert logged
    leaked = [
        (name, where)
        for name, value in secrets.items()
        for where, text in (("logs", logged), ("audit", audit))
        if value in text
    ]
    assert not leaked, leaked
