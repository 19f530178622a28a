"""CSRF (docs/staff.md): a request authenticated by the staff cookie with any method but
GET/HEAD must carry the session's X-CSRF-Token; otherwise 403 csrf_failed and nothing
changes. Walks the live route table, so a new route is covered the day it is added."""

from __future__ import annotations

import re

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.api.http import operation_of
from tests.helpers import (
    Till,
    bearer,
    make_holder,
    make_partner,
    make_staff,
    staff_sign_in,
)

_PARAM = re.compile(r"{[^}]+}")


def unsafe_routes(client: TestClient) -> list[tuple[str, str]]:
    return sorted(
        {
            (route.method, _PARAM.sub("x", route.resource.canonical))
            for route in client.app.router.routes()
            if route.method not in ("GET", "HEAD", "*")
        }
    )


def anonymous_unsafe_routes(client: TestClient) -> set[tuple[str, str]]:
    """The unsafe routes anyone may call (no role): the cookie never authenticates them."""
    return {
        (route.method, _PARAM.sub("x", route.resource.canonical))
        for route in client.app.router.routes()
        if route.method not in ("GET", "HEAD", "*")
        and not getattr(operation_of(route.handler), "roles", None)
    }


#: Sign-in routes and the application to join (docs/api.md) that anyone may call; a new one
#: must be added here on purpose.
ANONYMOUS_UNSAFE_ROUTES = {
    ("POST", "/v1/holder-sessions"),
    ("POST", "/v1/staff-sessions"),
    ("POST", "/v1/staff/setup"),
    ("POST", "/v1/partner-applications"),
    ("POST", "/join"),
}


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
    anonymous = anonymous_unsafe_routes(client)
    assert anonymous == ANONYMOUS_UNSAFE_ROUTES
    routes = [route for route in unsafe_routes(client) if route not in anonymous]
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


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_routes_anyone_may_call_ignore_the_cookie_and_its_csrf_token(
    client: TestClient, db, token: str | None
) -> None:
    """Not authenticated by the cookie, so never refused for it: the body is judged
    (here a bad one, 422) exactly as without a cookie, and nothing is written."""
    account = await make_staff(db, "bureau_admin")
    session = await staff_sign_in(client, account.email)
    headers = {"Cookie": session["Cookie"]}
    if token is not None:
        headers["X-CSRF-Token"] = token
    before = await _snapshot(db)
    # /join takes a form, not JSON: tests/api/test_join_page.py posts it with a cookie.
    for method, path in sorted(ANONYMOUS_UNSAFE_ROUTES - {("POST", "/join")}):
        response = await client.request(method, path, json={"name": "x"}, headers=headers)
        body = await response.json()
        assert (response.status, body["code"]) == (422, "validation_error"), (path, body)
    assert await _snapshot(db) == before


async def test_a_console_session_never_breaks_the_wallet_or_the_till_in_the_same_browser(
    client: TestClient, db, settings
) -> None:
    """docs/staff.md: a person signed in to the console uses /wallet and /scan in the same
    browser: the staff cookie goes along with every request and changes nothing."""
    till = await Till(db, settings).open(holder={"card_number": "SAME-BROWSER-1"})
    account = await make_staff(db, "bureau_admin")
    cookie = {"Cookie": (await staff_sign_in(client, account.email))["Cookie"]}

    # The wallet: sign in (a route anyone may call), then calls with the holder's bearer.
    signed_in = await client.post(
        "/v1/holder-sessions",
        json={"card_number": "SAME-BROWSER-1", "pin": "204816"},
        headers=cookie,
    )
    assert signed_in.status == 201, await signed_in.text()
    holder = {**bearer((await signed_in.json())["token"]), **cookie}
    claimed = await client.post("/v1/me/vouchers", json={"offer_id": till.offer_id}, headers=holder)
    assert claimed.status == 200, await claimed.text()  # the voucher Till made: claimed again
    token = await client.get(f"/v1/me/vouchers/{till.voucher_id}/token", headers=holder)
    assert token.status == 200

    # The till: preview, redeem and reverse with the scanner key.
    scanner = {**till.scanner, **cookie}
    qr = (await token.json())["token"]
    preview = await client.post(
        "/v1/redemptions/preview", json={"token": qr, "purchase_amount": 5000}, headers=scanner
    )
    assert preview.status == 200, await preview.text()
    redeemed = await client.post(
        "/v1/redemptions",
        json={"token": qr, "purchase_amount": 5000},
        headers={**scanner, "Idempotency-Key": "same-browser-1"},
    )
    assert redeemed.status == 201, await redeemed.text()
    reversal = await client.post(
        f"/v1/redemptions/{(await redeemed.json())['id']}/reversal",
        json={"reason": "退货"},
        headers=scanner,
    )
    assert reversal.status == 201, await reversal.text()

    # The holder signs out with the bearer; the cookie is not theirs to end.
    assert (await client.delete("/v1/me/session", headers=holder)).status == 204
    assert (await client.get("/v1/staff/me", headers=cookie)).status == 200


async def test_a_cookie_authenticated_post_without_the_token_is_still_refused(
    client: TestClient, db
) -> None:
    account = await make_staff(db, "bureau_admin")
    session = await staff_sign_in(client, account.email)
    holders_before = await db.fetchval("SELECT count(*) FROM holders")
    response = await client.post(
        "/v1/holders",
        json={
            "card_number": "CSRF-2",
            "category": "veteran",
            "display_name": "王建国",
            "region": "东城街道",
            "valid_until": "2030-12-31",
            "pin": "204816",
        },
        headers={"Cookie": session["Cookie"]},
    )
    assert response.status == 403 and (await response.json())["code"] == "csrf_failed"
    assert await db.fetchval("SELECT count(*) FROM holders") == holders_before
    # A bearer that is not a live key does not fall back to the cookie either.
    stale = await client.post(
        "/v1/partners",
        json={"name": "新伙伴", "category": "retail"},
        headers={**bearer("yd_not-a-live-key"), "Cookie": session["Cookie"]},
    )
    assert stale.status == 401
