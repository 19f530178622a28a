"""Rule 5 for every route: who may call it, and that nobody reaches another's resources.

The route list is read from the app, so a new route without an entry here fails the
test. Each caller calls each route with its own ids and, where a route is scoped to a
partner or a holder, with another's: a 2xx on another's id is a leak.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.domain.auth import Role
from service.domain.keys import hash_key
from service.flows import keys as keys_flow
from tests.helpers import (
    STAFF_PASSWORD,
    Till,
    bearer,
    make_holder,
    make_key,
    make_staff,
    make_voucher,
    staff_sign_in,
    token_for,
)

CALLERS = (
    "anonymous",
    "admin",
    "partner_a",
    "partner_b",
    "scanner_a",
    "revoked",
    "holder",
    # people signed in with a staff session cookie (docs/staff.md)
    "bureau_admin",
    "bureau_auditor",
    "manager_a",  # the partner_manager of partner a
)
ANYONE = set(CALLERS)  # public routes ignore Authorization, even a revoked key (docs/api.md)

#: A bureau_auditor reads what an admin may, except holders (personal data).
ADMIN_WRITE = {"admin", "bureau_admin"}
ADMIN_READ = ADMIN_WRITE | {"bureau_auditor"}
ADMIN = ADMIN_WRITE
PARTNERS = ADMIN_WRITE | {"partner_a", "partner_b", "manager_a"}
PARTNERS_READ = PARTNERS | {"bureau_auditor"}
PARTNERS_AND_SCANNERS = PARTNERS | {"scanner_a"}
SCANNER = {"scanner_a"}
HOLDER = {"holder"}
STAFF = {"bureau_admin", "bureau_auditor", "manager_a"}
KEY_MANAGERS = ADMIN_WRITE | {"manager_a"}  # a partner_manager: its own partner's scanner keys

#: (method, route template) -> callers allowed by role. Ownership is tested separately.
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("GET", "/healthz"): ANYONE,
    ("GET", "/readyz"): ANYONE,
    ("GET", "/openapi.json"): ANYONE,
    ("GET", "/docs"): ANYONE,
    ("GET", "/docs/init.js"): ANYONE,
    ("GET", "/.well-known/jwks.json"): ANYONE,
    ("GET", "/v1/directory"): ANYONE,
    ("GET", "/directory"): ANYONE,
    ("POST", "/v1/partner-applications"): ANYONE,
    ("GET", "/v1/partner-applications"): ADMIN_READ,
    ("GET", "/v1/partner-applications/{application_id}"): ADMIN_READ,
    ("POST", "/v1/partner-applications/{application_id}/approval"): ADMIN,
    ("POST", "/v1/partner-applications/{application_id}/rejection"): ADMIN,
    ("GET", "/join"): ANYONE,
    ("POST", "/join"): ANYONE,
    ("GET", "/join/status"): ANYONE,
    ("POST", "/v1/partners"): ADMIN,
    ("GET", "/v1/partners"): ADMIN_READ,  # docs/api.md: a partner reads its own by id
    ("GET", "/v1/partners/{partner_id}"): PARTNERS_READ,
    ("PATCH", "/v1/partners/{partner_id}"): ADMIN,
    ("POST", "/v1/partners/{partner_id}/keys"): KEY_MANAGERS,
    ("GET", "/v1/partners/{partner_id}/keys"): KEY_MANAGERS | ADMIN_READ,
    ("DELETE", "/v1/keys/{key_id}"): KEY_MANAGERS,
    ("GET", "/v1/audit-events"): ADMIN_READ,
    ("POST", "/v1/holders"): ADMIN,
    ("GET", "/v1/holders"): ADMIN,
    ("POST", "/v1/holders/import"): ADMIN,
    ("GET", "/v1/holder-imports/{import_id}"): ADMIN,
    ("GET", "/v1/holders/{holder_id}"): ADMIN,
    ("PATCH", "/v1/holders/{holder_id}"): ADMIN,
    ("POST", "/v1/offers"): PARTNERS,
    ("GET", "/v1/offers"): PARTNERS_READ,
    ("GET", "/v1/offers/{offer_id}"): PARTNERS_READ,
    ("PATCH", "/v1/offers/{offer_id}"): PARTNERS,
    ("POST", "/v1/holder-sessions"): ANYONE,
    ("DELETE", "/v1/me/session"): HOLDER,
    ("GET", "/v1/me"): HOLDER,
    ("GET", "/v1/me/offers"): HOLDER,
    ("POST", "/v1/me/vouchers"): HOLDER,
    ("GET", "/v1/me/vouchers"): HOLDER,
    ("GET", "/v1/me/vouchers/{voucher_id}"): HOLDER,
    ("GET", "/v1/me/vouchers/{voucher_id}/token"): HOLDER,
    ("GET", "/v1/me/vouchers/{voucher_id}/qr.png"): HOLDER,
    ("GET", "/v1/me/vouchers/{voucher_id}/qr.svg"): HOLDER,
    ("GET", "/v1/me/vouchers/{voucher_id}/barcode.svg"): HOLDER,
    ("POST", "/v1/vouchers"): ADMIN,
    ("POST", "/v1/redemptions/preview"): SCANNER,
    ("POST", "/v1/redemptions"): SCANNER,
    ("GET", "/v1/redemptions"): PARTNERS_READ,
    ("GET", "/v1/redemption-refusals"): PARTNERS_READ,
    ("GET", "/v1/till"): SCANNER,
    ("GET", "/v1/till/redemptions"): SCANNER,
    ("GET", "/v1/till/pack"): SCANNER,
    ("GET", "/v1/redemptions/{redemption_id}"): PARTNERS_READ,
    ("POST", "/v1/redemptions/{redemption_id}/reversal"): PARTNERS_AND_SCANNERS,
    ("GET", "/metrics"): ANYONE,
    ("GET", "/scan"): ANYONE,
    ("GET", "/scan-worker.js"): ANYONE,
    ("GET", "/wallet"): ANYONE,
    ("GET", "/console"): ANYONE,
    ("GET", "/v1/reports/discounts"): PARTNERS_READ,
    ("GET", "/v1/reports/summary"): ADMIN_READ,
    ("GET", "/v1/reports/statement"): ADMIN_READ,
    ("GET", "/v1/reports/statement/qr.svg"): ADMIN_READ,
    ("GET", "/v1/ledger/checkpoint"): ADMIN_READ,
    ("GET", "/v1/ledger/entries"): ADMIN_READ,
    ("GET", "/v1/ledger/proofs/inclusion"): PARTNERS_READ,
    ("GET", "/v1/ledger/proofs/consistency"): ADMIN_READ,
    ("POST", "/v1/staff-sessions"): ANYONE,
    ("DELETE", "/v1/staff-sessions/current"): STAFF,
    ("GET", "/v1/staff/me"): STAFF,
    ("POST", "/v1/staff/me/totp"): STAFF,
    ("GET", "/v1/staff/me/totp/qr.svg"): STAFF,
    ("POST", "/v1/staff/me/totp/confirm"): STAFF,
    ("POST", "/v1/staff/setup"): ANYONE,
    ("POST", "/v1/staff"): {"bureau_admin"},
    ("GET", "/v1/staff"): {"bureau_admin"},
    ("GET", "/v1/staff/{staff_id}"): {"bureau_admin"},
    ("PATCH", "/v1/staff/{staff_id}"): {"bureau_admin"},
}

#: Routes that only serve files (their own tests cover them).
#: ("/console/" also holds the console's other paths: the same page as /console.)
ASSET_PREFIXES = ("/docs/static", "/pages/static", "/static", "/console/")


@dataclass
class World:
    """Two partners, each with an offer, keys, a holder's voucher and a redemption."""

    a: Till
    b: Till
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    other_voucher: str = ""
    redemption_a: str = ""
    redemption_b: str = ""
    db: asyncpg.Connection | None = None
    staff_emails: dict[str, str] = field(default_factory=dict)
    victim_staff: str = ""


@pytest.fixture
async def world(client: TestClient, db: asyncpg.Connection, settings, admin) -> World:
    multi_use = {"kind": "amount_off", "amount_off": 100, "uses_per_voucher": 1000}
    a = await Till(db, settings).open(offer=multi_use, holder={"card_number": "MATRIX-A"})
    b = await Till(db, settings).open(offer=multi_use, holder={"card_number": "MATRIX-B"})
    # The holder caller owns a's voucher; another holder owns a second voucher of a's offer.
    other_holder = await make_holder(db, card_number="MATRIX-OTHER")
    other_voucher = await make_voucher(db, settings, other_holder, a.offer_id)
    revoked = await make_key(db, Role.PARTNER, a.partner_id)
    revoked_id = await db.fetchval("SELECT id FROM api_keys ORDER BY id DESC LIMIT 1")
    await keys_flow.revoke(db, None, revoked_id)
    session = await client.post(
        "/v1/holder-sessions", json={"card_number": "MATRIX-A", "pin": "204816"}
    )
    world = World(a=a, b=b, other_voucher=other_voucher, db=db)
    staff_accounts = {
        "bureau_admin": await make_staff(db, "bureau_admin"),
        "bureau_auditor": await make_staff(db, "bureau_auditor"),
        "manager_a": await make_staff(db, "partner_manager", a.partner_id),
    }
    world.staff_emails = {caller: account.email for caller, account in staff_accounts.items()}
    world.victim_staff = (await make_staff(db, "bureau_auditor")).id
    world.headers = {
        "anonymous": {},
        "admin": admin,
        "partner_a": a.partner,
        "partner_b": b.partner,
        "scanner_a": a.scanner,
        "revoked": bearer(revoked),
        "holder": bearer((await session.json())["token"]),
        **{
            caller: await staff_sign_in(client, account.email)
            for caller, account in staff_accounts.items()
        },
    }
    for till in (a, b):
        answer = await client.post(
            "/v1/redemptions",
            json={"token": till.token, "purchase_amount": 1000},
            headers={**till.scanner, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert answer.status == 201, await answer.text()
        if till is a:
            world.redemption_a = (await answer.json())["id"]
        else:
            world.redemption_b = (await answer.json())["id"]
    return world


def side(world: World, caller: str, own: bool) -> Till:
    """The partner whose resources count as the caller's own (a, for admin and holder)."""
    mine = world.b if caller == "partner_b" else world.a
    theirs = world.a if mine is world.b else world.b
    return mine if own else theirs


async def path_ids(world: World, caller: str, own: bool) -> dict[str, str]:
    till = side(world, caller, own)
    victim_key = await make_key(world.db, Role.SCANNER, till.partner_id)
    victim_id = await world.db.fetchval(
        "SELECT id FROM api_keys WHERE key_hash = $1", hash_key(victim_key)
    )
    return {
        "partner_id": till.partner_id,
        "offer_id": till.offer_id,
        "holder_id": till.holder_id,
        "key_id": victim_id,
        "voucher_id": world.a.voucher_id if own else world.other_voucher,
        "redemption_id": world.redemption_a if till is world.a else world.redemption_b,
        "staff_id": world.victim_staff,
        "import_id": "imp_38GM2K1Q2593PA8S",  # admin only: a 404 for the admin is enough
        "application_id": "apl_38GM2K1Q2593PA8S",  # the bureau's only: a 404 is enough
    }


async def body_for(world: World, method: str, template: str, caller: str, own: bool):
    till = side(world, caller, own)
    if template == "/v1/partners":
        return {"name": "新伙伴", "category": "retail"}
    if template == "/v1/partners/{partner_id}":
        return {"contact_name": "张三"}
    if template == "/v1/partners/{partner_id}/keys":
        return {"role": "scanner", "label": "matrix"}
    if template == "/v1/holders":
        return {
            "card_number": f"M-{uuid.uuid4().hex[:8]}",
            "category": "veteran",
            "display_name": "李四",
            "region": "",
            "valid_until": "2030-12-31",
            "pin": "123456",
        }
    if template == "/v1/holders/import":
        return "card_number,category,display_name,region,valid_until,pin\n"
    if template == "/v1/holders/{holder_id}":
        return {"region": "北街道"}
    if template == "/v1/offers" and method == "POST":
        return {
            "partner_id": till.partner_id,
            "title": "新优惠",
            "kind": "amount_off",
            "amount_off": 100,
        }
    if template == "/v1/offers/{offer_id}":
        return {"description": "matrix"}
    if template == "/v1/holder-sessions":
        return {"card_number": "MATRIX-OTHER", "pin": "204816"}
    if template == "/v1/me/vouchers":
        return {"offer_id": world.a.offer_id}
    if template == "/v1/vouchers":
        return {"holder_id": world.a.holder_id, "offer_id": world.a.offer_id}
    if template in ("/v1/redemptions/preview", "/v1/redemptions"):
        return {
            "token": await token_for(world.db, world.a.settings, till.voucher_id),
            "purchase_amount": 1000,
        }
    if template == "/v1/redemptions/{redemption_id}/reversal":
        return {"reason": "matrix"}
    if template == "/v1/staff-sessions":
        return {"email": world.staff_emails["bureau_auditor"], "password": STAFF_PASSWORD}
    if template == "/v1/staff" and method == "POST":
        return {"email": f"m-{uuid.uuid4().hex[:8]}@bureau.example", "role": "bureau_auditor"}
    if template == "/v1/staff/{staff_id}":
        return {"display_name": "matrix"}
    if template == "/v1/staff/setup":
        return {"setup_token": "yst_unknown", "password": STAFF_PASSWORD}
    if template == "/v1/staff/me/totp/confirm":
        return {"code": "000000"}
    return None


#: Which callers' access to a route depends on owning the resource.
SCOPED_CALLERS = {"partner_a", "partner_b", "scanner_a", "holder", "manager_a"}


#: Unscoped routes whose body names a resource that may be another partner's.
SCOPED_BY_BODY = {
    ("POST", "/v1/offers"),
    ("POST", "/v1/redemptions"),
    ("POST", "/v1/redemptions/preview"),
}


def is_scoped(method: str, template: str, caller: str) -> bool:
    # Only admins and a partner_manager (its own scanner keys) revoke keys by id.
    by_path = "{" in template and (caller == "manager_a" or not template.startswith("/v1/keys"))
    return by_path or (method, template) in SCOPED_BY_BODY


async def call(client, world, method, template, caller, own):
    ids = await path_ids(world, caller, own)
    path = template.format(**ids) if "{" in template else template
    body = await body_for(world, method, template, caller, own)
    headers = dict(world.headers[caller])
    if template == "/v1/me/session" and caller == "holder":
        # Signing out ends the session it is sent with: use one of its own.
        session = await client.post(
            "/v1/holder-sessions", json={"card_number": "MATRIX-A", "pin": "204816"}
        )
        headers = bearer((await session.json())["token"])
    if template == "/v1/staff-sessions/current" and caller in STAFF:
        # Signing out ends the session it is sent with: use one of its own.
        headers = await staff_sign_in(client, world.staff_emails[caller])
    if template == "/v1/redemptions":
        headers["Idempotency-Key"] = uuid.uuid4().hex
    if isinstance(body, str):
        headers["Content-Type"] = "text/csv"
        response = await client.request(method, path, data=body.encode(), headers=headers)
    else:
        response = await client.request(method, path, json=body, headers=headers)
    # A staff sign-in sets a cookie: keep it from riding along on the next caller's calls.
    client.session.cookie_jar.clear()
    return response


async def test_every_route_has_an_entry(client: TestClient) -> None:
    routes = {
        (r.method, r.resource.canonical)
        for r in client.app.router.routes()
        if r.method != "HEAD" and not r.resource.canonical.startswith(ASSET_PREFIXES)
    }
    missing = routes - set(ALLOWED)
    assert not missing, f"add these routes to ALLOWED: {sorted(missing)}"


async def test_every_caller_on_every_route(client: TestClient, world: World) -> None:
    routes = sorted(
        {(r.method, r.resource.canonical) for r in client.app.router.routes()} & set(ALLOWED)
    )
    leaks, wrong = [], []
    for (method, template), caller in itertools.product(routes, CALLERS):
        allowed = caller in ALLOWED[(method, template)]
        response = await call(client, world, method, template, caller, own=True)
        status = response.status
        assert status < 500, (method, template, caller, await response.text())
        if not allowed:
            expected = 401 if caller in ("anonymous", "revoked") else 403
            if status != expected:
                wrong.append((method, template, caller, status, expected))
        elif status in (401, 403):
            wrong.append((method, template, caller, status, "allowed"))
        if allowed and caller in SCOPED_CALLERS and is_scoped(method, template, caller):
            foreign = await call(client, world, method, template, caller, own=False)
            if foreign.status < 400 or foreign.status == 401:
                leaks.append((method, template, caller, foreign.status))
    assert not wrong, wrong
    assert not leaks, f"reached another's resource: {leaks}"
