"""Staff management (docs/staff.md) and the audit actor: list with filters and pages, read,
change; the last active bureau_admin stays; every audit event names its actor."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import make_partner, make_staff, staff_sign_in


@pytest.fixture
async def chief(client: TestClient, db):
    account = await make_staff(db, "bureau_admin", display_name="王主任")
    return account, await staff_sign_in(client, account.email)


async def test_the_staff_list_filters_and_pages(client: TestClient, db, chief) -> None:
    _, bureau = chief
    partner = await make_partner(db)
    managers = [
        (await make_staff(db, "partner_manager", partner, display_name=f"经理{i}")).id
        for i in range(3)
    ]
    await make_staff(db, "bureau_auditor", email="audit.only@bureau.example")
    seen, cursor = [], None
    while True:
        params = {"role": "partner_manager", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get("/v1/staff", params=params, headers=bureau)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == managers
    found = await (await client.get("/v1/staff?q=AUDIT.only", headers=bureau)).json()
    assert [item["email"] for item in found["items"]] == ["audit.only@bureau.example"]
    by_partner = await (
        await client.get(f"/v1/staff?partner_id={partner}&status=active", headers=bureau)
    ).json()
    assert len(by_partner["items"]) == 3
    one = await client.get(f"/v1/staff/{managers[0]}", headers=bureau)
    assert (await one.json())["partner_id"] == partner
    assert (await client.get("/v1/staff/stf_nope", headers=bureau)).status == 404


async def test_a_bureau_admin_changes_name_role_partner_and_status(
    client: TestClient, db, chief
) -> None:
    _, bureau = chief
    partner = await make_partner(db)
    account = await make_staff(db, "bureau_auditor")
    renamed = await client.patch(
        f"/v1/staff/{account.id}", json={"display_name": "新名字"}, headers=bureau
    )
    assert (await renamed.json())["display_name"] == "新名字"
    needs_partner = await client.patch(
        f"/v1/staff/{account.id}", json={"role": "partner_manager"}, headers=bureau
    )
    assert needs_partner.status == 422
    manager = await client.patch(
        f"/v1/staff/{account.id}",
        json={"role": "partner_manager", "partner_id": partner},
        headers=bureau,
    )
    assert (await manager.json())["partner_id"] == partner
    back = await client.patch(
        f"/v1/staff/{account.id}", json={"role": "bureau_admin"}, headers=bureau
    )
    assert (await back.json())["partner_id"] is None
    disabled = await client.patch(
        f"/v1/staff/{account.id}", json={"status": "disabled"}, headers=bureau
    )
    assert (await disabled.json())["status"] == "disabled"


async def test_the_last_active_bureau_admin_cannot_be_disabled_or_demoted(
    client: TestClient, db, chief
) -> None:
    me, bureau = chief
    for change in ({"status": "disabled"}, {"role": "bureau_auditor"}):
        refused = await client.patch(f"/v1/staff/{me.id}", json=change, headers=bureau)
        assert refused.status == 409 and (await refused.json())["code"] == "conflict"
    other = await make_staff(db, "bureau_admin")
    demoted = await client.patch(
        f"/v1/staff/{me.id}", json={"role": "bureau_auditor"}, headers=bureau
    )
    assert demoted.status == 200
    last = await staff_sign_in(client, other.email)
    refused = await client.patch(f"/v1/staff/{other.id}", json={"status": "disabled"}, headers=last)
    assert refused.status == 409


async def test_two_admins_demoting_each_other_at_once_leave_one(client: TestClient, db) -> None:
    one = await make_staff(db, "bureau_admin")
    two = await make_staff(db, "bureau_admin")
    one_h = await staff_sign_in(client, one.email)
    two_h = await staff_sign_in(client, two.email)
    answers = await asyncio.gather(
        client.patch(f"/v1/staff/{two.id}", json={"status": "disabled"}, headers=one_h),
        client.patch(f"/v1/staff/{one.id}", json={"status": "disabled"}, headers=two_h),
    )
    statuses = sorted(a.status for a in answers)
    assert statuses in ([200, 409], [200, 401]), statuses
    active = await db.fetchval(
        "SELECT count(*) FROM staff_accounts WHERE role = 'bureau_admin' AND status = 'active'"
    )
    assert active == 1


async def test_audit_events_name_staff_and_key_actors_and_filter_by_them(
    client: TestClient, db, chief, admin
) -> None:
    me, bureau = chief
    by_staff = await client.post(
        "/v1/partners", json={"name": "人的伙伴", "category": "retail"}, headers=bureau
    )
    by_key = await client.post(
        "/v1/partners", json={"name": "钥匙的伙伴", "category": "retail"}, headers=admin
    )
    assert by_staff.status == by_key.status == 201
    key_id = await db.fetchval("SELECT id FROM api_keys WHERE label = 'test admin'")

    staff_events = await (
        await client.get("/v1/audit-events?actor_type=staff&entity=partner", headers=admin)
    ).json()
    assert [e["actor"] for e in staff_events["items"]] == [
        {"type": "staff", "id": me.id, "display_name": "王主任"}
    ]
    assert staff_events["items"][0]["actor_role"] == "bureau_admin"
    key_events = await (await client.get(f"/v1/audit-events?actor={key_id}", headers=bureau)).json()
    assert [e["actor"] for e in key_events["items"]] == [
        {"type": "key", "id": key_id, "label": "test admin"}
    ]
    # Every event has an actor of a known shape.
    every = await (await client.get("/v1/audit-events?limit=200", headers=admin)).json()
    assert every["items"] and all(
        e["actor"]["type"] in ("staff", "key", "holder", "system") for e in every["items"]
    )
