"""Partners: enrolment, life cycle, filters, keyset pagination, visibility."""

import asyncio

import asyncpg
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.domain.auth import Role
from tests.helpers import bearer, make_key, make_partner


async def enrol(client: TestClient, admin, **fields) -> dict:
    body = {"name": "区邮政分公司", "category": "postal", **fields}
    response = await client.post("/v1/partners", json=body, headers=admin)
    assert response.status == 201, await response.text()
    return await response.json()


async def test_enrolled_partner_starts_pending(client: TestClient, admin) -> None:
    partner = await enrol(client, admin, contact_name="王经理", contact_phone="010-1234")
    assert partner["status"] == "pending"
    assert partner["contact_name"] == "王经理"
    fetched = await client.get(f"/v1/partners/{partner['id']}", headers=admin)
    assert await fetched.json() == partner


async def test_status_follows_the_life_cycle(client: TestClient, admin) -> None:
    partner = await enrol(client, admin)
    path = f"/v1/partners/{partner['id']}"
    for status in ("active", "suspended", "active", "suspended", "terminated"):
        response = await client.patch(path, json={"status": status}, headers=admin)
        assert response.status == 200, (status, await response.text())
        assert (await response.json())["status"] == status


async def test_forbidden_transitions_are_conflicts(client: TestClient, admin) -> None:
    partner = await enrol(client, admin)
    path = f"/v1/partners/{partner['id']}"
    for status in ("suspended", "terminated"):
        response = await client.patch(path, json={"status": status}, headers=admin)
        assert response.status == 409
        assert (await response.json())["code"] == "conflict"
    await client.patch(path, json={"status": "active"}, headers=admin)
    for status in ("pending", "terminated"):
        response = await client.patch(path, json={"status": status}, headers=admin)
        assert response.status == 409, status
    await client.patch(path, json={"status": "suspended"}, headers=admin)
    await client.patch(path, json={"status": "terminated"}, headers=admin)
    for status in ("active", "suspended", "pending"):
        response = await client.patch(path, json={"status": status}, headers=admin)
        assert response.status == 409, status


async def test_unknown_category_is_validation_error(client: TestClient, admin) -> None:
    response = await client.post(
        "/v1/partners", json={"name": "x", "category": "casino"}, headers=admin
    )
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "category"


async def test_list_filters_by_status_category_and_name(client: TestClient, admin, db) -> None:
    await make_partner(db, name="区邮政分公司", category="postal")
    await make_partner(db, name="红色旅游平台", category="culture_tourism", status="pending")
    await make_partner(db, name="老兵饭店", category="catering")

    async def names(query: str) -> list[str]:
        response = await client.get(f"/v1/partners?{query}", headers=admin)
        return sorted(item["name"] for item in (await response.json())["items"])

    assert await names("status=pending") == ["红色旅游平台"]
    assert await names("category=catering") == ["老兵饭店"]
    assert await names("q=邮政") == ["区邮政分公司"]
    assert await names("status=active&category=postal") == ["区邮政分公司"]


async def test_walking_pages_of_one_sees_every_partner_once_while_rows_are_added(
    client: TestClient, admin, db: asyncpg.Connection
) -> None:
    for index in range(7):
        await make_partner(db, name=f"shop {index}")
    seen: list[str] = []
    cursor = None
    added = 0
    while True:
        query = "limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(f"/v1/partners?{query}", headers=admin)).json()
        assert len(page["items"]) <= 1
        seen += [item["id"] for item in page["items"]]
        if added < 3:
            await make_partner(db, name=f"late {added}")  # inserted while walking
            added += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    total = await db.fetchval("SELECT count(*) FROM partners")
    assert len(seen) == len(set(seen)) == total


async def test_limit_is_bounded(client: TestClient, admin) -> None:
    assert (await client.get("/v1/partners?limit=201", headers=admin)).status == 422
    assert (await client.get("/v1/partners?limit=0", headers=admin)).status == 422
    assert (await client.get("/v1/partners?limit=200", headers=admin)).status == 200


async def test_partner_key_may_not_list_partners_and_reads_its_own_by_id(
    client: TestClient, db
) -> None:
    mine = await make_partner(db, name="mine")
    theirs = await make_partner(db, name="theirs")
    headers = bearer(await make_key(db, Role.PARTNER, mine))
    listed = await client.get("/v1/partners", headers=headers)
    assert listed.status == 403
    assert (await listed.json())["code"] == "forbidden"
    assert (await client.get(f"/v1/partners/{theirs}", headers=headers)).status == 404
    assert (await client.get(f"/v1/partners/{mine}", headers=headers)).status == 200
    assert (
        await client.patch(f"/v1/partners/{mine}", json={"name": "x"}, headers=headers)
    ).status == 403


async def test_concurrent_status_changes_never_skip_the_life_cycle(
    client: TestClient, admin
) -> None:
    partner = await enrol(client, admin)
    path = f"/v1/partners/{partner['id']}"
    await client.patch(path, json={"status": "active"}, headers=admin)
    answers = await asyncio.gather(
        *(client.patch(path, json={"status": s}, headers=admin) for s in ["suspended"] * 5)
    )
    assert sorted(r.status for r in answers) == [200] * 5  # suspending twice is not a change
    final = await (await client.get(path, headers=admin)).json()
    assert final["status"] == "suspended"


async def test_changes_are_audited_with_before_and_after(client: TestClient, admin, db) -> None:
    partner = await enrol(client, admin)
    await client.patch(f"/v1/partners/{partner['id']}", json={"name": "新名字"}, headers=admin)
    await client.patch(f"/v1/partners/{partner['id']}", json={"status": "active"}, headers=admin)
    events = await db.fetch(
        "SELECT action, actor_role, changes FROM audit_events WHERE entity_id = $1 ORDER BY id",
        partner["id"],
    )
    assert [e["action"] for e in events] == ["partner.create", "partner.update", "partner.status"]
    assert events[1]["changes"] == {"name": ["区邮政分公司", "新名字"]}
    assert events[2]["changes"] == {"status": ["pending", "active"]}
    assert {e["actor_role"] for e in events} == {"admin"}


async def test_a_partner_has_a_public_profile_and_its_region_is_one_of_the_bureaus(
    client: TestClient, admin, database_url: str, settings, aiohttp_client
) -> None:
    created = await client.post(
        "/v1/partners",
        json={
            "name": "老兵饭店",
            "category": "catering",
            "region": "东城街道",
            "public_phone": "010-6403-7700",
            "opening_hours": "每日 11:00–21:00",
        },
        headers=admin,
    )
    assert created.status == 201, await created.text()
    partner = await created.json()
    assert (partner["region"], partner["public_phone"], partner["listed"]) == (
        "东城街道",
        "010-6403-7700",
        True,
    )
    hidden = await client.patch(
        f"/v1/partners/{partner['id']}", json={"listed": False}, headers=admin
    )
    assert (await hidden.json())["listed"] is False
    assert (
        await client.patch(f"/v1/partners/{partner['id']}", json={"listed": 0}, headers=admin)
    ).status == 422
    long_hours = await client.patch(
        f"/v1/partners/{partner['id']}", json={"opening_hours": "时" * 101}, headers=admin
    )
    assert long_hours.status == 422

    bureau = await aiohttp_client(
        create_app(settings.with_overrides(regions=("东城街道", "西城街道")), database_url)
    )
    elsewhere = await bureau.post(
        "/v1/partners",
        json={"name": "南门小吃", "category": "catering", "region": "南苑街道"},
        headers=admin,
    )
    assert elsewhere.status == 422
    assert (await elsewhere.json())["errors"][0]["field"] == "region"
    moved = await bureau.patch(
        f"/v1/partners/{partner['id']}", json={"region": "西城街道"}, headers=admin
    )
    assert (await moved.json())["region"] == "西城街道"
