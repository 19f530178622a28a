"""CSRF (SPEC 7): a request authenticated by the staff cookie with any method but
GET/HEAD must carry the session's X-CSRF-Token; otherwise 403 csrf_failed and nothing
changes. Walks the live route table, so a new route is covered the day it is added."""

from __future__ import annotations

import re

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import make_partner, make_staff, staff_sign_in

_PARAM = re.compile(r"{[^}]+}")


def unsafe_routes(client: TestClient) -> list[tuple[str, str]]:
    return sorted(
        {
            (route.method, _PARAM.sub("x", route.resource.canonical))
            for route in client.app.router.routes()
            if route.method not in ("GET", "HEAD", "*")
        }
    )


async def _snapshot(db: asyncpg.Connection) -> dict[str, int]:
    tables = await db.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename <> 'schema_migrations'"
    )
    return {
        t["tablename"]: await db.fetchval(f'SELECT count(*) FROM "{t["tablename"]}"')
        for t in tables
    }


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
async def test_every_unsafe_route_refuses_a_cookie_without_the_csrf_token(
    client: TestClient, db, token: str | None
) -> None:
    await make_partner(db)
    account = await make_staff(db, "bureau_admin")
    session = await staff_sign_in(client, account.email)
    headers = {"Cookie": session["Cookie"]}
    if token is not None:
        headers["X-CSRF-Token"] = token
    routes = unsafe_routes(client)
    assert ("POST", "/v1/partners") in routes and ("DELETE", "/v1/staff-sessions/current") in routes
    before = await _snapshot(db)
    refused = []
    for method, path in routes:
        response = await client.request(method, path, json={"name": "x"}, headers=headers)
        body = await response.json()
        if response.status != 403 or body.get("code") != "csrf_failed":
            refused.append((method, path, response.status, body.get("code")))
    assert not refused, f"answered without checking the CSRF token: {refused}"
    assert await _snapshot(db) == before
    # The session itself still works (a refused request changes nothing).
    assert (await client.get("/v1/staff/me", headers=headers)).status == 200


async def test_the_right_token_passes(client: TestClient, db) -> None:
    account = await make_staff(db, "bureau_admin")
    headers = await staff_sign_in(client, account.email)
    response = await client.post(
        "/v1/partners", json={"name": "新伙伴", "category": "retail"}, headers=headers
    )
    assert response.status == 201


async def test_another_sessions_token_does_not_pass(client: TestClient, db) -> None:
    account = await make_staff(db, "bureau_admin")
    mine = await staff_sign_in(client, account.email)
    theirs = await staff_sign_in(client, account.email)
    response = await client.post(
        "/v1/partners",
        json={"name": "新伙伴", "category": "retail"},
        headers={"Cookie": mine["Cookie"], "X-CSRF-Token": theirs["X-CSRF-Token"]},
    )
    assert response.status == 403 and (await response.json())["code"] == "csrf_failed"


async def test_api_keys_and_holder_tokens_need_no_csrf_token(client: TestClient, db, admin) -> None:
    account = await make_staff(db, "bureau_admin")
    session = await staff_sign_in(client, account.email)
    # An API key wins over a cookie sent alongside; it needs no CSRF token.
    response = await client.post(
        "/v1/partners",
        json={"name": "新伙伴", "category": "retail"},
        headers={**admin, "Cookie": session["Cookie"]},
    )
    assert response.status == 201


async def test_a_holder_token_needs_no_csrf_token(client: TestClient, db) -> None:
    from tests.helpers import bearer, make_holder

    await make_holder(db, card_number="CSRF-1")
    account = await make_staff(db, "bureau_admin")
    session = await staff_sign_in(client, account.email)
    signed_in = await client.post(
        "/v1/holder-sessions", json={"card_number": "CSRF-1", "pin": "204816"}
    )
    token = (await signed_in.json())["token"]
    out = await client.delete(
        "/v1/me/session", headers={**bearer(token), "Cookie": session["Cookie"]}
    )
    assert out.status == 204
