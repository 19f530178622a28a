"""Enterprises that ask to join (docs/api.md): anyone applies; the bureau decides once."""

from __future__ import annotations

import asyncio
from ipaddress import ip_network
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.domain.auth import Role
from tests.helpers import (
    STAFF_PASSWORD,
    bearer,
    make_key,
    make_partner,
    make_staff,
    staff_sign_in,
)

PUBLIC_URL = "https://youdai.example.gov.cn"


def application(**changes: Any) -> dict[str, Any]:
    body = {
        "name": "老兵饭店",
        "category": "catering",
        "contact_name": "王芳",
        "contact_phone": "010-6403 7700",
        "contact_email": "wang.fang@laobing.example",
        "address": "东城区和平里大街 8 号",
        "region": "东城街道",
        "public_phone": "010-6403 7701",
        "opening_hours": "每日 11:00–21:00",
        "offer_idea": "堂食九折，最多减 50 元",
        "agree_to_terms": True,
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not None}


async def apply(client: TestClient, **changes: Any):
    return await client.post("/v1/partner-applications", json=application(**changes))


async def submitted(client: TestClient, **changes: Any) -> dict[str, Any]:
    answer = await apply(client, **changes)
    assert answer.status == 201, await answer.text()
    return await answer.json()


@pytest.fixture
async def public_client(database_url: str, settings, aiohttp_client) -> TestClient:
    """The service as deployed behind its public address (YOUDAI_PUBLIC_URL)."""
    return await aiohttp_client(
        create_app(settings.with_overrides(public_url=PUBLIC_URL), database_url)
    )


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


# --- submitting ---------------------------------------------------------------------------


async def test_anyone_applies_and_gets_a_secret_status_link(
    public_client: TestClient, db: asyncpg.Connection
) -> None:
    answer = await public_client.post(
        "/v1/partner-applications",
        json=application(),
        headers={"Authorization": "Bearer garbage", "Host": "evil.example"},
    )
    assert answer.status == 201, await answer.text()
    body = await answer.json()
    assert set(body) == {"id", "status", "created_at", "status_url"}
    assert body["status"] == "submitted" and body["id"].startswith("apl_")
    assert body["status_url"].startswith(PUBLIC_URL + "/join/status?token=")
    assert answer.headers["Cache-Control"] == "no-store"
    token = token_of(body["status_url"])
    row = await db.fetchrow("SELECT * FROM partner_applications WHERE id = $1", body["id"])
    # Only the token's hash is kept.
    assert token.encode() not in bytes(row["status_token_hash"])
    assert token not in str(dict(row))
    assert row["name"] == "老兵饭店" and row["offer_idea"] == "堂食九折，最多减 50 元"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"agree_to_terms": False}, "agree_to_terms"),
        ({"agree_to_terms": "true"}, "agree_to_terms"),
        ({"agree_to_terms": None}, "agree_to_terms"),
        ({"name": "老兵\u202e饭店"}, "name"),
        ({"address": "和平里\x07"}, "address"),
        ({"offer_idea": "x" * 1001}, "offer_idea"),
        ({"contact_email": "not an email"}, "contact_email"),
        ({"category": "spaceport"}, "category"),
        ({"region": None}, "region"),
        ({"offer_idea": None}, "offer_idea"),
        ({"listed": True}, "listed"),
    ],
)
async def test_bad_fields_are_refused_by_name(
    client: TestClient, changes: dict[str, Any], field: str
) -> None:
    answer = await apply(client, **changes)
    assert answer.status == 422, await answer.text()
    problem = await answer.json()
    assert problem["code"] == "validation_error"
    assert field in [error["field"] for error in problem["errors"]]


async def test_the_offer_idea_may_be_a_thousand_characters_on_several_lines(
    client: TestClient,
) -> None:
    assert (await apply(client, offer_idea="优" * 998 + "\n惠")).status == 201


async def test_the_region_is_one_of_the_bureaus_when_it_has_a_list(
    database_url: str, settings, aiohttp_client
) -> None:
    client = await aiohttp_client(
        create_app(settings.with_overrides(regions=("东城街道", "西城街道")), database_url)
    )
    refused = await apply(client, region="火星")
    assert refused.status == 422
    assert [e["field"] for e in (await refused.json())["errors"]] == ["region"]
    assert (await apply(client, region="西城街道")).status == 201


async def test_a_name_or_phone_of_a_partner_is_a_conflict(
    client: TestClient, db: asyncpg.Connection
) -> None:
    partner = await make_partner(db, name="Old Soldier Café")
    await db.execute("UPDATE partners SET contact_phone = '(010) 8888-1234' WHERE id = $1", partner)
    same_name = await apply(client, name="  old soldier  CAFÉ ", contact_phone="13900000001")
    assert same_name.status == 409
    assert (await same_name.json())["code"] == "conflict"
    same_phone = await apply(client, name="别的店", contact_phone="010 8888 1234")
    assert same_phone.status == 409
    assert (await apply(client, name="别的店", contact_phone="13900000002")).status == 201


async def test_a_name_or_phone_of_an_open_application_is_a_conflict(client: TestClient) -> None:
    first = await submitted(client, name="老兵 饭店", contact_phone="139-0000-0003")
    assert (await apply(client, name="老兵饭店", contact_phone="13900000004")).status == 409
    assert (await apply(client, name="新店", contact_phone="13900000003")).status == 409
    assert first["status"] == "submitted"


async def test_a_rejected_application_does_not_block_a_new_one(
    client: TestClient, admin: dict[str, str]
) -> None:
    first = await submitted(client)
    rejected = await client.post(
        f"/v1/partner-applications/{first['id']}/rejection",
        json={"reason": "材料不全"},
        headers=admin,
    )
    assert rejected.status == 200
    assert (await apply(client)).status == 201


async def test_the_sixth_application_from_one_address_in_an_hour_is_refused(
    database_url: str, settings, aiohttp_client
) -> None:
    proxied = settings.with_overrides(trusted_proxies=(ip_network("127.0.0.0/8"),))
    client = await aiohttp_client(create_app(proxied, database_url))
    one = {"X-Forwarded-For": "198.51.100.7"}
    for n in range(4):
        answer = await client.post(
            "/v1/partner-applications",
            json=application(name=f"店{n}", contact_phone=f"1390000010{n}"),
            headers=one,
        )
        assert answer.status == 201
    # A duplicate counts too: refusals cannot be used to probe for free.
    duplicate = await client.post(
        "/v1/partner-applications",
        json=application(name="店0", contact_phone="13900000199"),
        headers=one,
    )
    assert duplicate.status == 409
    sixth = await client.post(
        "/v1/partner-applications",
        json=application(name="店6", contact_phone="13900000106"),
        headers=one,
    )
    assert sixth.status == 429
    assert (await sixth.json())["code"] == "too_many_attempts"
    assert 1 <= int(sixth.headers["Retry-After"]) <= 3600
    # Another address (and a hop the client wrote itself does not help) is counted alone.
    assert (
        await client.post(
            "/v1/partner-applications",
            json=application(name="店7", contact_phone="13900000107"),
            headers={"X-Forwarded-For": "1.2.3.4, 198.51.100.7"},
        )
    ).status == 429
    other = await client.post(
        "/v1/partner-applications",
        json=application(name="店8", contact_phone="13900000108"),
        headers={"X-Forwarded-For": "198.51.100.8"},
    )
    assert other.status == 201


async def test_an_address_window_is_an_hour(client: TestClient, db: asyncpg.Connection) -> None:
    for n in range(5):
        assert (await apply(client, name=f"店{n}", contact_phone=f"1390000020{n}")).status == 201
    assert (await apply(client, name="店5", contact_phone="13900000205")).status == 429
    await db.execute(
        "UPDATE partner_application_attempts SET attempted_at = attempted_at - interval '61 min'"
    )
    assert (await apply(client, name="店5", contact_phone="13900000205")).status == 201


# --- the status page ------------------------------------------------------------------------


async def test_the_status_page_shows_the_status_and_the_reason_in_both_languages(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = await submitted(client)
    path = urlsplit(body["status_url"])
    status_path = f"{path.path}?{path.query}"
    page = await client.get(status_path)
    assert page.status == 200 and page.content_type == "text/html"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    html = await page.text()
    assert "审核中" in html and "老兵饭店" in html and "<script" not in html
    english = await (await client.get(status_path + "&lang=en")).text()
    assert "Being reviewed" in english

    await client.post(
        f"/v1/partner-applications/{body['id']}/rejection",
        json={"reason": "营业执照<已过期>"},
        headers=admin,
    )
    rejected = await (await client.get(status_path)).text()
    assert "未通过" in rejected and "营业执照&lt;已过期&gt;" in rejected
    by_header = await (
        await client.get(status_path, headers={"Accept-Language": "en-GB,en;q=0.9"})
    ).text()
    assert "Not approved" in by_header and "营业执照&lt;已过期&gt;" in by_header


async def test_an_unknown_status_link_is_not_found(client: TestClient) -> None:
    await submitted(client)
    answer = await client.get("/join/status?token=yap_made-up")
    assert answer.status == 404
    assert (await answer.json())["code"] == "not_found"


# --- the bureau -------------------------------------------------------------------------------


async def test_the_bureau_lists_newest_first_and_filters_by_status(
    client: TestClient, admin: dict[str, str]
) -> None:
    ids = [
        (await submitted(client, name=f"店{n}", contact_phone=f"1390000030{n}"))["id"]
        for n in range(3)
    ]
    await client.post(
        f"/v1/partner-applications/{ids[1]}/rejection", json={"reason": "重复"}, headers=admin
    )
    listed = await (await client.get("/v1/partner-applications", headers=admin)).json()
    assert [item["id"] for item in listed["items"]] == ids[::-1]
    first = await (await client.get("/v1/partner-applications?limit=2", headers=admin)).json()
    assert [item["id"] for item in first["items"]] == [ids[2], ids[1]]
    rest = await (
        await client.get(
            f"/v1/partner-applications?limit=2&cursor={first['next_cursor']}", headers=admin
        )
    ).json()
    assert [item["id"] for item in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    open_ones = await (
        await client.get("/v1/partner-applications?status=submitted", headers=admin)
    ).json()
    assert [item["id"] for item in open_ones["items"]] == [ids[2], ids[0]]
    rejected = await (
        await client.get("/v1/partner-applications?status=rejected", headers=admin)
    ).json()
    assert [item["id"] for item in rejected["items"]] == [ids[1]]
    assert rejected["items"][0]["rejection_reason"] == "重复"
    one = await (await client.get(f"/v1/partner-applications/{ids[0]}", headers=admin)).json()
    assert one["contact_email"] == "wang.fang@laobing.example" and one["status"] == "submitted"
    assert one["partner_id"] is None and one["decided_at"] is None
    assert "status_token_hash" not in one
    missing = await client.get("/v1/partner-applications/apl_0000000000000000", headers=admin)
    assert missing.status == 404


async def test_approval_enrols_the_partner_active_and_invites_its_manager(
    public_client: TestClient, db: asyncpg.Connection
) -> None:
    client = public_client
    bureau = await staff_sign_in(client, (await make_staff(db, "bureau_admin")).email)
    body = await submitted(client)
    answer = await client.post(
        f"/v1/partner-applications/{body['id']}/approval",
        headers={**bureau, "Host": "evil.example"},
    )
    assert answer.status == 201, await answer.text()
    approved = await answer.json()
    partner = approved["partner"]
    assert partner["status"] == "active"
    assert {
        name: partner[name]
        for name in (
            "name",
            "category",
            "contact_name",
            "contact_phone",
            "address",
            "region",
            "public_phone",
            "opening_hours",
            "listed",
        )
    } == {
        "name": "老兵饭店",
        "category": "catering",
        "contact_name": "王芳",
        "contact_phone": "010-6403 7700",
        "address": "东城区和平里大街 8 号",
        "region": "东城街道",
        "public_phone": "010-6403 7701",
        "opening_hours": "每日 11:00–21:00",
        "listed": True,
    }
    manager = approved["manager"]
    assert manager["email"] == "wang.fang@laobing.example"
    assert manager["setup_url"].startswith(PUBLIC_URL + "/console/setup?token=")
    account = await db.fetchrow(
        "SELECT role, partner_id, display_name FROM staff_accounts WHERE email = $1",
        manager["email"],
    )
    assert dict(account) == {
        "role": "partner_manager",
        "partner_id": partner["id"],
        "display_name": "王芳",
    }
    # The manager's link works: the new partner_manager sets a password.
    setup = await client.post(
        "/v1/staff/setup",
        json={"setup_token": token_of(manager["setup_url"]), "password": STAFF_PASSWORD},
    )
    assert setup.status in (200, 201, 204), await setup.text()
    read = await (await client.get(f"/v1/partner-applications/{body['id']}", headers=bureau)).json()
    assert read["status"] == "approved" and read["partner_id"] == partner["id"]
    page = await (
        await client.get(
            urlsplit(body["status_url"]).path + "?token=" + token_of(body["status_url"])
        )
    ).text()
    assert "已通过" in page


async def test_a_second_decision_is_a_conflict(client: TestClient, admin: dict[str, str]) -> None:
    approved = await submitted(
        client, name="甲店", contact_phone="13900000401", contact_email="a@jia.example"
    )
    rejected = await submitted(client, name="乙店", contact_phone="13900000402")
    first = await client.post(f"/v1/partner-applications/{approved['id']}/approval", headers=admin)
    assert first.status == 201
    for application_id in (approved["id"],):
        again = await client.post(
            f"/v1/partner-applications/{application_id}/approval", headers=admin
        )
        assert again.status == 409 and (await again.json())["code"] == "conflict"
        after = await client.post(
            f"/v1/partner-applications/{application_id}/rejection",
            json={"reason": "改主意"},
            headers=admin,
        )
        assert after.status == 409
    no = await client.post(
        f"/v1/partner-applications/{rejected['id']}/rejection",
        json={"reason": "不在本区"},
        headers=admin,
    )
    assert no.status == 200
    decided = await no.json()
    assert decided["status"] == "rejected" and decided["rejection_reason"] == "不在本区"
    assert decided["decided_at"] is not None
    for decision, json in (("approval", None), ("rejection", {"reason": "再次"})):
        again = await client.post(
            f"/v1/partner-applications/{rejected['id']}/{decision}", json=json, headers=admin
        )
        assert again.status == 409, decision
    unknown = await client.post(
        "/v1/partner-applications/apl_0000000000000000/rejection",
        json={"reason": "x"},
        headers=admin,
    )
    assert unknown.status == 404


async def test_an_approval_that_cannot_invite_changes_nothing(
    client: TestClient, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    taken = await make_staff(db, "bureau_auditor")
    body = await submitted(client, contact_email=taken.email)
    answer = await client.post(f"/v1/partner-applications/{body['id']}/approval", headers=admin)
    assert answer.status == 409
    assert await db.fetchval("SELECT count(*) FROM partners") == 0
    status = await db.fetchval("SELECT status FROM partner_applications WHERE id = $1", body["id"])
    assert status == "submitted"


async def test_both_decisions_are_audited(client: TestClient, db: asyncpg.Connection) -> None:
    admin_account = await make_staff(db, "bureau_admin")
    bureau = await staff_sign_in(client, admin_account.email)
    yes = await submitted(client, name="甲店", contact_phone="13900000501")
    no = await submitted(client, name="乙店", contact_phone="13900000502")
    await client.post(f"/v1/partner-applications/{yes['id']}/approval", headers=bureau)
    await client.post(
        f"/v1/partner-applications/{no['id']}/rejection",
        json={"reason": "不在本区"},
        headers=bureau,
    )
    events = await db.fetch(
        "SELECT actor_id, action, entity_id, changes FROM audit_events "
        "WHERE entity_type = 'partner_application' ORDER BY id"
    )
    assert [(e["actor_id"], e["action"], e["entity_id"]) for e in events] == [
        (admin_account.id, "partner_application.approve", yes["id"]),
        (admin_account.id, "partner_application.reject", no["id"]),
    ]
    assert events[0]["changes"]["status"] == ["submitted", "approved"]
    assert events[1]["changes"]["rejection_reason"] == [None, "不在本区"]
    listed = await (
        await client.get("/v1/audit-events?entity=partner_application", headers=bureau)
    ).json()
    assert {item["action"] for item in listed["items"]} == {
        "partner_application.approve",
        "partner_application.reject",
    }


async def test_an_auditor_reads_but_does_not_decide_and_a_partner_reads_nothing(
    client: TestClient, db: asyncpg.Connection
) -> None:
    body = await submitted(client)
    auditor = await staff_sign_in(client, (await make_staff(db, "bureau_auditor")).email)
    assert (await client.get("/v1/partner-applications", headers=auditor)).status == 200
    assert (
        await client.get(f"/v1/partner-applications/{body['id']}", headers=auditor)
    ).status == 200
    for decision, json in (("approval", None), ("rejection", {"reason": "x"})):
        refused = await client.post(
            f"/v1/partner-applications/{body['id']}/{decision}", json=json, headers=auditor
        )
        assert refused.status == 403, decision
    partner = bearer(await make_key(db, Role.PARTNER, await make_partner(db, name="别家")))
    assert (await client.get("/v1/partner-applications", headers=partner)).status == 403
    assert (
        await client.get(f"/v1/partner-applications/{body['id']}", headers=partner)
    ).status == 403
    assert (await client.get("/v1/partner-applications")).status == 401
    status = await db.fetchval("SELECT status FROM partner_applications WHERE id = $1", body["id"])
    assert status == "submitted"


async def test_the_same_application_sent_at_once_is_taken_once(
    database_url: str, settings, aiohttp_client
) -> None:
    """Duplicates are judged one at a time, across processes (two apps, one database)."""
    clients = [await aiohttp_client(create_app(settings, database_url)) for _ in range(2)]
    answers = await asyncio.gather(
        *(
            clients[n % 2].post(
                "/v1/partner-applications",
                json=application(name="同 时 店" if n % 2 else "同时店", contact_phone=f"1390{n}"),
            )
            for n in range(5)
        )
    )
    assert sorted(answer.status for answer in answers) == [201, 409, 409, 409, 409]
