"""The staff second factor through HTTP (docs/staff.md): enrol, confirm, totp_required, a code
accepted once, YOUDAI_STAFF_TOTP, a bureau_admin's reset; secrets sealed at rest."""

from __future__ import annotations

import time

import pyotp
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from tests.helpers import STAFF_PASSWORD, make_staff, staff_sign_in


async def _enrol(client: TestClient, headers: dict) -> str:
    enrol = await client.post("/v1/staff/me/totp", headers=headers)
    assert enrol.status == 201, await enrol.text()
    body = await enrol.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert enrol.headers["Cache-Control"] == "no-store"
    confirm = await client.post(
        "/v1/staff/me/totp/confirm",
        json={"code": pyotp.TOTP(body["secret"]).now()},
        headers=headers,
    )
    assert confirm.status == 200, await confirm.text()
    assert (await confirm.json())["totp_enabled"] is True
    return body["secret"]


async def _sign_in(client: TestClient, email: str, **extra):
    response = await client.post(
        "/v1/staff-sessions", json={"email": email, "password": STAFF_PASSWORD, **extra}
    )
    client.session.cookie_jar.clear()
    return response


async def test_after_enrolment_sign_in_needs_a_code_and_accepts_each_once(
    client: TestClient, db
) -> None:
    account = await make_staff(db, "bureau_admin")
    secret = await _enrol(client, await staff_sign_in(client, account.email))

    without = await _sign_in(client, account.email)
    assert without.status == 401 and (await without.json())["code"] == "totp_required"
    assert "Set-Cookie" not in without.headers

    # The confirming code's step is used up; the next step's code (within ±1) works once.
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    first = await _sign_in(client, account.email, totp_code=next_code)
    assert first.status == 201, await first.text()
    replay = await _sign_in(client, account.email, totp_code=next_code)
    assert replay.status == 401 and (await replay.json())["code"] == "unauthenticated"
    wrong = await _sign_in(client, account.email, totp_code="000000")
    assert wrong.status == 401


async def test_the_pending_enrolment_is_served_as_a_qr_code(client: TestClient, db) -> None:
    account = await make_staff(db, "partner_manager", await _partner(db))
    headers = await staff_sign_in(client, account.email)
    assert (await client.get("/v1/staff/me/totp/qr.svg", headers=headers)).status == 404
    await client.post("/v1/staff/me/totp", headers=headers)
    qr = await client.get("/v1/staff/me/totp/qr.svg", headers=headers)
    assert qr.status == 200
    assert qr.headers["Content-Type"].startswith("image/svg+xml")
    assert qr.headers["Cache-Control"] == "no-store"
    assert (await qr.read()).lstrip().startswith(b"<")


async def _partner(db) -> str:
    from tests.helpers import make_partner

    return await make_partner(db)


async def test_totp_secrets_are_sealed_at_rest(client: TestClient, db) -> None:
    account = await make_staff(db, "bureau_admin")
    secret = await _enrol(client, await staff_sign_in(client, account.email))
    row = await db.fetchrow("SELECT * FROM staff_accounts WHERE id = $1", account.id)
    assert secret.encode() not in bytes(row["totp_secret_sealed"])
    assert secret not in str(dict(row))


@pytest.mark.parametrize(
    ("policy", "role", "must_enrol"),
    [
        ("required", "partner_manager", True),
        ("required_for_bureau", "bureau_auditor", True),
        ("required_for_bureau", "partner_manager", False),
        ("optional", "bureau_admin", False),
    ],
)
async def test_when_required_an_account_without_a_factor_may_only_enrol(
    db, database_url, settings, aiohttp_client, policy, role, must_enrol
) -> None:
    client = await aiohttp_client(
        create_app(settings.with_overrides(staff_totp=policy), database_url)
    )
    partner = await _partner(db) if role == "partner_manager" else None
    account = await make_staff(db, role, partner)
    headers = await staff_sign_in(client, account.email)
    me = await (await client.get("/v1/staff/me", headers=headers)).json()
    assert me["must_enrol_totp"] is must_enrol
    work = f"/v1/partners/{partner}" if partner else "/v1/partners"
    blocked = await client.get(work, headers=headers)
    assert blocked.status == (403 if must_enrol else 200)
    if must_enrol:
        await _enrol(client, headers)
        assert (await client.get(work, headers=headers)).status == 200


async def test_a_bureau_admin_resets_anothers_second_factor(client: TestClient, db) -> None:
    admin = await make_staff(db, "bureau_admin")
    other = await make_staff(db, "bureau_auditor")
    other_session = await staff_sign_in(client, other.email)
    await _enrol(client, other_session)
    bureau = await staff_sign_in(client, admin.email)
    reset = await client.patch(f"/v1/staff/{other.id}", json={"reset_totp": True}, headers=bureau)
    assert reset.status == 200 and (await reset.json())["totp_enabled"] is False
    assert (await client.get("/v1/staff/me", headers=other_session)).status == 401
    assert (await _sign_in(client, other.email)).status == 201
