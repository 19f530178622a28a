"""Staff accounts through HTTP (docs/staff.md): invitation, setup, sign-in, sessions, cookie."""

from __future__ import annotations

import asyncio
import hashlib
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, make_mocked_request

from service.api.staff_session import cookie_must_be_secure
from service.app import create_app
from tests.helpers import STAFF_PASSWORD, make_partner, make_staff, staff_sign_in


@pytest.fixture
async def bureau(client: TestClient, db: asyncpg.Connection) -> dict[str, str]:
    """Headers of a signed-in bureau_admin."""
    account = await make_staff(db, "bureau_admin", email="chief@bureau.example")
    return await staff_sign_in(client, account.email)


async def _invite(client, headers, **body) -> dict:
    response = await client.post(
        "/v1/staff",
        json={"email": "li.na@bureau.example", "role": "bureau_auditor", **body},
        headers=headers,
    )
    assert response.status == 201, await response.text()
    return await response.json()


def _token(setup_url: str) -> str:
    return parse_qs(urlsplit(setup_url).query)["token"][0]


async def test_an_invitation_sets_a_password_once_and_the_person_signs_in(
    client: TestClient, db, bureau
) -> None:
    invited = await _invite(client, bureau, display_name="李娜")
    assert invited["status"] == "active" and invited["role"] == "bureau_auditor"
    assert urlsplit(invited["setup_url"]).path == "/console/setup"
    token = _token(invited["setup_url"])

    setup = await client.post(
        "/v1/staff/setup", json={"setup_token": token, "password": STAFF_PASSWORD}
    )
    assert setup.status == 204
    again = await client.post(
        "/v1/staff/setup", json={"setup_token": token, "password": STAFF_PASSWORD + "x"}
    )
    assert again.status == 404

    headers = await staff_sign_in(client, "LI.NA@bureau.example")  # emails ignore case
    me = await client.get("/v1/staff/me", headers=headers)
    body = await me.json()
    assert me.status == 200
    assert body["email"] == "li.na@bureau.example" and body["display_name"] == "李娜"
    assert body["csrf_token"] == headers["X-CSRF-Token"]
    stored = await db.fetchval(
        "SELECT password_hash FROM staff_accounts WHERE id = $1", invited["id"]
    )
    assert stored.startswith("$argon2id$") and STAFF_PASSWORD not in stored


async def test_the_same_email_in_another_case_is_refused(client: TestClient, bureau) -> None:
    await _invite(client, bureau)
    response = await client.post(
        "/v1/staff", json={"email": "Li.Na@Bureau.example", "role": "bureau_admin"}, headers=bureau
    )
    assert response.status == 409


async def test_a_setup_link_older_than_72_hours_is_refused(client: TestClient, db, bureau) -> None:
    invited = await _invite(client, bureau)
    await db.execute(
        "UPDATE staff_invitations SET created_at = now() - interval '73 hours', "
        "expires_at = now() - interval '1 hour'"
    )
    response = await client.post(
        "/v1/staff/setup",
        json={"setup_token": _token(invited["setup_url"]), "password": STAFF_PASSWORD},
    )
    assert response.status == 404


@pytest.mark.parametrize(
    "password",
    ["short-pw-1", "password1234", "qwertyuiop123", "iloveyou12345", "li.na@bureau.example1"],
)
async def test_a_short_or_common_password_is_refused_and_the_link_still_works(
    client: TestClient, bureau, password: str
) -> None:
    invited = await _invite(client, bureau)
    token = _token(invited["setup_url"])
    refused = await client.post(
        "/v1/staff/setup", json={"setup_token": token, "password": password}
    )
    body = await refused.json()
    assert refused.status == 422 and body["errors"][0]["field"] == "password"
    accepted = await client.post(
        "/v1/staff/setup", json={"setup_token": token, "password": STAFF_PASSWORD}
    )
    assert accepted.status == 204


@pytest.mark.parametrize(
    ("password", "display_name"),
    [
        ("Violet-harbour-47-wang.xiaoming", "王小明"),  # the email's local part
        ("WANG.XIAOMING#Orchid!Tide9", "王小明"),  # in any case
        ("violet tide wangxiaoming 47", "王小明"),  # without its dot
        ("Tide-orchid-王小明-ledger-83", "王小明"),  # the display name
        ("Tide-orchid-Xiaoming-Wang-ledger-83", "Xiaoming Wang"),  # separators aside
    ],
)
async def test_a_password_holding_the_email_name_or_display_name_is_refused(
    client: TestClient, db, bureau, password: str, display_name: str
) -> None:
    """Refused like a common password: validation_error on `password`, in both languages."""
    invited = await _invite(
        client, bureau, email="wang.xiaoming@bureau.example", display_name=display_name
    )
    token = _token(invited["setup_url"])
    answers = {}
    for language in ("en", "zh"):
        refused = await client.post(
            "/v1/staff/setup",
            json={"setup_token": token, "password": password},
            headers={"Accept-Language": language},
        )
        assert refused.status == 422, password
        body = await refused.json()
        assert body["code"] == "validation_error"
        assert [error["field"] for error in body["errors"]] == ["password"]
        answers[language] = body["errors"][0]["message"]
    assert answers["en"].isascii() and not answers["zh"].isascii()
    accepted = await client.post(
        "/v1/staff/setup", json={"setup_token": token, "password": STAFF_PASSWORD}
    )
    assert accepted.status == 204


async def test_a_password_of_up_to_200_characters_is_accepted_and_longer_refused(
    client: TestClient, bureau
) -> None:
    # zxcvbn raises on more than 72 characters: such a password once answered 500.
    token = _token((await _invite(client, bureau))["setup_url"])
    too_long = await client.post(
        "/v1/staff/setup", json={"setup_token": token, "password": STAFF_PASSWORD * 20 + "x" * 201}
    )
    assert too_long.status == 422
    accepted = await client.post(
        "/v1/staff/setup",
        json={"setup_token": token, "password": (STAFF_PASSWORD + "-lang-" * 40)[:200]},
    )
    assert accepted.status == 204, await accepted.text()


async def test_unknown_email_and_wrong_password_answer_the_same(client: TestClient, db) -> None:
    account = await make_staff(db, "bureau_admin")
    wrong = await client.post(
        "/v1/staff-sessions", json={"email": account.email, "password": "not-the-password-1"}
    )
    unknown = await client.post(
        "/v1/staff-sessions", json={"email": "nobody@x.example", "password": "not-the-password-1"}
    )
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json()
    assert wrong.headers["Content-Type"] == unknown.headers["Content-Type"]
    assert "Set-Cookie" not in wrong.headers


@pytest.mark.parametrize("known", [True, False])
async def test_five_failures_in_15_minutes_lock_the_account(
    client: TestClient, db, known: bool
) -> None:
    email = (await make_staff(db, "bureau_admin")).email if known else "ghost@x.example"
    for _ in range(5):
        response = await client.post(
            "/v1/staff-sessions", json={"email": email, "password": "wrong-password-99"}
        )
        assert response.status == 401
    locked = await client.post(
        "/v1/staff-sessions", json={"email": email, "password": STAFF_PASSWORD}
    )
    assert locked.status == 429
    assert (await locked.json())["code"] == "too_many_attempts"
    assert 800 <= int(locked.headers["Retry-After"]) <= 900


async def test_a_disabled_account_cannot_sign_in(client: TestClient, db) -> None:
    account = await make_staff(db, "bureau_auditor")
    await db.execute("UPDATE staff_accounts SET status = 'disabled' WHERE id = $1", account.id)
    response = await client.post(
        "/v1/staff-sessions", json={"email": account.email, "password": STAFF_PASSWORD}
    )
    assert response.status == 401


async def test_the_cookie_is_httponly_strict_and_not_secure_on_loopback_http(
    client: TestClient, db
) -> None:
    account = await make_staff(db, "bureau_admin")
    response = await client.post(
        "/v1/staff-sessions", json={"email": account.email, "password": STAFF_PASSWORD}
    )
    cookie = response.cookies["youdai_staff"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]
    body = await response.json()
    assert set(body) == {"staff", "csrf_token", "expires_at"}
    assert set(body["staff"]) == {"id", "email", "display_name", "role", "partner_id"}
    # The secret is stored only as its hash.
    secret = cookie.value
    stored = await db.fetch("SELECT secret_hash FROM staff_sessions")
    assert [row["secret_hash"] for row in stored] == [hashlib.sha256(secret.encode()).digest()]
    dump = str(await db.fetch("SELECT * FROM staff_sessions"))
    assert secret not in dump and body["csrf_token"] not in dump


async def test_the_cookie_is_secure_behind_tls(client: TestClient, db) -> None:
    account = await make_staff(db, "bureau_admin")
    response = await client.post(
        "/v1/staff-sessions",
        json={"email": account.email, "password": STAFF_PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert response.cookies["youdai_staff"]["secure"]


def _request_from(address: str):
    transport = mock.Mock()
    extra = {"peername": (address, 50000), "sslcontext": None}
    transport.get_extra_info.side_effect = lambda name, default=None: extra.get(name, default)
    return make_mocked_request("POST", "/v1/staff-sessions", transport=transport)


@pytest.mark.parametrize(
    ("address", "secure"),
    [("127.0.0.1", False), ("::1", False), ("203.0.113.9", True), ("10.0.0.7", True)],
)
def test_the_cookie_is_secure_unless_reached_over_plain_http_on_loopback(
    address: str, secure: bool
) -> None:
    request = _request_from(address)
    assert request.remote == address
    assert cookie_must_be_secure(request) is secure


async def test_signing_out_ends_the_session(client: TestClient, db) -> None:
    account = await make_staff(db, "bureau_admin")
    headers = await staff_sign_in(client, account.email)
    out = await client.delete("/v1/staff-sessions/current", headers=headers)
    assert out.status == 204
    assert (await client.get("/v1/staff/me", headers=headers)).status == 401


async def test_a_session_ends_after_30_minutes_idle_and_after_12_hours(
    client: TestClient, db
) -> None:
    account = await make_staff(db, "bureau_admin")
    idle = await staff_sign_in(client, account.email)
    old = await staff_sign_in(client, account.email)
    fresh = await staff_sign_in(client, account.email)
    idle_hash = hashlib.sha256(idle["Cookie"].split("=", 1)[1].encode()).digest()
    old_hash = hashlib.sha256(old["Cookie"].split("=", 1)[1].encode()).digest()
    await db.execute(
        "UPDATE staff_sessions SET last_seen_at = now() - interval '31 minutes' "
        "WHERE secret_hash = $1",
        idle_hash,
    )
    await db.execute(
        "UPDATE staff_sessions SET expires_at = now() - interval '1 second' WHERE secret_hash = $1",
        old_hash,
    )
    assert (await client.get("/v1/staff/me", headers=idle)).status == 401
    assert (await client.get("/v1/staff/me", headers=old)).status == 401
    assert (await client.get("/v1/staff/me", headers=fresh)).status == 200


async def test_disabling_or_a_new_role_ends_every_session_in_every_process(
    client: TestClient, db, database_url, settings, aiohttp_client, bureau
) -> None:
    other_process = await aiohttp_client(create_app(settings, database_url))
    partner = await make_partner(db)
    for change in ({"status": "disabled"}, {"role": "partner_manager", "partner_id": partner}):
        account = await make_staff(db, "bureau_auditor")
        there = await staff_sign_in(other_process, account.email)
        assert (await other_process.get("/v1/partners", headers=there)).status == 200
        patched = await client.patch(f"/v1/staff/{account.id}", json=change, headers=bureau)
        assert patched.status == 200, await patched.text()
        assert (await other_process.get("/v1/partners", headers=there)).status == 401


async def test_create_staff_and_sign_in_concurrently_count_every_failure(
    client: TestClient, db
) -> None:
    account = await make_staff(db, "bureau_admin")
    answers = await asyncio.gather(
        *(
            client.post(
                "/v1/staff-sessions", json={"email": account.email, "password": f"wrong-pass-{i}"}
            )
            for i in range(8)
        )
    )
    assert sorted(a.status for a in answers) == [401] * 5 + [429] * 3


async def test_a_setup_link_never_points_at_the_requests_host(
    client: TestClient, db, bureau, database_url: str, settings, aiohttp_client
) -> None:
    """docs/staff.md: links for people start with YOUDAI_PUBLIC_URL; a forged Host goes nowhere."""
    forged = await client.post(
        "/v1/staff",
        json={"email": "a@bureau.example", "role": "bureau_auditor"},
        headers={**bureau, "Host": "evil.example"},
    )
    assert forged.status == 201
    link = (await forged.json())["setup_url"]
    assert "evil.example" not in link
    assert link.startswith(settings.own_address() + "/console/setup?token=")
    # A loopback Host is used as it came (a demo reached on localhost).
    local = await _invite(client, {**bureau, "Host": "localhost:8123"}, email="b@bureau.example")
    assert local["setup_url"].startswith("http://localhost:8123/console/setup?token=")

    public = await aiohttp_client(
        create_app(
            settings.with_overrides(public_url="https://youdai.example.gov.cn"), database_url
        )
    )
    headers = await staff_sign_in(public, "chief@bureau.example")
    invited = await public.post(
        "/v1/staff",
        json={"email": "c@bureau.example", "role": "bureau_auditor"},
        headers={**headers, "Host": "evil.example"},
    )
    assert (await invited.json())["setup_url"].startswith(
        "https://youdai.example.gov.cn/console/setup?token="
    )
