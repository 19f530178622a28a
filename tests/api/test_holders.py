"""Card holders through HTTP: enrol, find, edit, suspend and revoke; the PIN stays secret."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.domain import pins
from service.domain.auth import Role
from tests.helpers import bearer, make_holder, make_key, make_partner

PIN = "730195"

HOLDER = {
    "card_number": "YD-2024-000123",
    "category": "veteran",
    "display_name": "王建国",
    "region": "东城街道",
    "valid_until": "2030-12-31",
    "pin": PIN,
}


async def create(client: TestClient, headers: dict, expect: int = 201, **changes) -> dict:
    response = await client.post("/v1/holders", json={**HOLDER, **changes}, headers=headers)
    assert response.status == expect, await response.text()
    return await response.json()


async def audit_events(db: asyncpg.Connection, holder_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT action, actor_role, changes FROM audit_events WHERE entity_id = $1 ORDER BY id",
        holder_id,
    )


async def test_enrolled_holder_is_active_and_answered_without_its_pin(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    body = await create(client, admin)
    assert body["id"].startswith("hld_")
    assert {k: body[k] for k in HOLDER if k != "pin"} == {
        k: v for k, v in HOLDER.items() if k != "pin"
    }
    assert body["status"] == "active"
    assert "pin" not in body and "pin_hash" not in body
    stored = await db.fetchval("SELECT pin_hash FROM holders WHERE id = $1", body["id"])
    assert stored.startswith("$argon2id$")
    assert pins.verify_pin(stored, PIN)
    [event] = await audit_events(db, body["id"])
    assert event["action"] == "holder.create" and event["actor_role"] == "admin"
    assert event["changes"]["card_number"] == [None, "YD-2024-000123"]
    assert event["changes"]["valid_until"] == [None, "2030-12-31"]


async def test_card_number_is_kept_upper_case_and_enrolling_it_again_is_a_conflict(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    body = await create(client, admin, card_number="yd-7")
    assert body["card_number"] == "YD-7"
    problem = await create(client, admin, expect=409, card_number="Yd-7", display_name="李四")
    assert problem["code"] == "conflict"
    assert await db.fetchval("SELECT count(*) FROM holders") == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("card_number", "YD 1"),
        ("card_number", "YD1"),
        ("pin", 730195),
        ("pin", "12a4"),
        ("pin", "123"),
        ("category", "general"),
        ("valid_until", "2030-02-30"),
        ("valid_until", "2030-12-31T00:00:00Z"),
        ("display_name", ""),
        ("display_name", "x" * 101),
        ("display_name", "王\u0000"),
        ("region", "区" * 101),
        ("national_id", "110101195001011234"),
    ],
)
async def test_a_bad_field_is_a_validation_error_naming_it(
    client: TestClient, admin: dict, db: asyncpg.Connection, field: str, value: object
) -> None:
    problem = await create(client, admin, expect=422, **{field: value})
    assert problem["code"] == "validation_error"
    assert [error["field"] for error in problem["errors"]] == [field]
    assert await db.fetchval("SELECT count(*) FROM holders") == 0


async def test_a_holder_is_read_by_id_and_an_unknown_id_is_404(
    client: TestClient, admin: dict
) -> None:
    created = await create(client, admin)
    response = await client.get(f"/v1/holders/{created['id']}", headers=admin)
    assert response.status == 200
    assert await response.json() == created
    response = await client.get("/v1/holders/hld_nope", headers=admin)
    assert response.status == 404
    assert (await response.json())["code"] == "not_found"


async def test_patch_changes_details_and_records_before_and_after(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    created = await create(client, admin)
    response = await client.patch(
        f"/v1/holders/{created['id']}",
        json={"region": "西城街道", "valid_until": "2032-06-30", "category": "disabled_veteran"},
        headers=admin,
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["region"], body["valid_until"], body["category"]) == (
        "西城街道",
        "2032-06-30",
        "disabled_veteran",
    )
    event = (await audit_events(db, created["id"]))[-1]
    assert event["action"] == "holder.update"
    assert event["changes"] == {
        "region": ["东城街道", "西城街道"],
        "valid_until": ["2030-12-31", "2032-06-30"],
        "category": ["veteran", "disabled_veteran"],
    }


async def test_patch_of_an_unknown_holder_is_404(client: TestClient, admin: dict) -> None:
    response = await client.patch("/v1/holders/hld_nope", json={"region": "x"}, headers=admin)
    assert response.status == 404


async def test_status_goes_active_suspended_active_revoked_and_never_back(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    holder = (await create(client, admin))["id"]
    for status in ("suspended", "active", "suspended", "revoked"):
        response = await client.patch(
            f"/v1/holders/{holder}", json={"status": status}, headers=admin
        )
        assert response.status == 200, await response.text()
        assert (await response.json())["status"] == status
    for status in ("active", "suspended"):
        response = await client.patch(
            f"/v1/holders/{holder}", json={"status": status}, headers=admin
        )
        assert response.status == 409
        assert (await response.json())["code"] == "conflict"
    actions = [event["action"] for event in await audit_events(db, holder)]
    assert actions == ["holder.create"] + ["holder.status"] * 4


async def test_a_new_pin_replaces_the_hash_and_clears_a_sign_in_lockout(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    holder = (await create(client, admin))["id"]
    await db.execute(
        "UPDATE holders SET failed_pin_count = 5, failed_pin_window_started_at = now(), "
        "locked_until = now() + interval '15 minutes' WHERE id = $1",
        holder,
    )
    response = await client.patch(f"/v1/holders/{holder}", json={"pin": "11112222"}, headers=admin)
    assert response.status == 200
    row = await db.fetchrow("SELECT * FROM holders WHERE id = $1", holder)
    assert pins.verify_pin(row["pin_hash"], "11112222")
    assert not pins.verify_pin(row["pin_hash"], PIN)
    assert (row["failed_pin_count"], row["locked_until"]) == (0, None)
    assert row["failed_pin_window_started_at"] is None
    event = (await audit_events(db, holder))[-1]
    assert event["action"] == "holder.update"
    assert event["changes"] == {"pin": ["***", "***"]}


async def test_the_pin_appears_in_no_answer_and_no_audit_event(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    answers = []
    created = await create(client, admin)
    answers.append(str(created))
    holder = created["id"]
    new_pin = "98765432"
    for method, path, kwargs in [
        ("GET", f"/v1/holders/{holder}", {}),
        ("GET", "/v1/holders?q=YD", {}),
        ("PATCH", f"/v1/holders/{holder}", {"json": {"pin": new_pin, "display_name": "王建"}}),
        ("PATCH", f"/v1/holders/{holder}", {"json": {"status": "suspended"}}),
    ]:
        response = await client.request(method, path, headers=admin, **kwargs)
        assert response.status == 200
        answers.append(await response.text())
    events = await db.fetch(
        "SELECT changes::text AS changes FROM audit_events WHERE entity_type = 'holder'"
    )
    assert len(events) == 3
    for text in answers + [event["changes"] for event in events]:
        assert PIN not in text and new_pin not in text
        assert "argon2" not in text


async def test_list_filters_by_category_status_and_region(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    a = await make_holder(db, category="veteran", region="东城")
    b = await make_holder(db, category="martyr_family", region="东城", status="suspended")
    c = await make_holder(db, category="martyr_family", region="西城")
    d = await make_holder(db, category="other", region="")

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/v1/holders?{query}", headers=admin)
        assert response.status == 200, await response.text()
        return [item["id"] for item in (await response.json())["items"]]

    assert await ids("") == [a, b, c, d]
    assert await ids("category=martyr_family") == [b, c]
    assert await ids("status=suspended") == [b]
    assert await ids("status=active&region=东城") == [a]
    assert await ids("region=") == [d]
    assert await ids("category=martyr_family&region=西城") == [c]


async def test_q_finds_a_card_by_its_number_or_beginning_and_a_name_by_any_part(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    first = await make_holder(db, card_number="YD-1001", display_name="王建国")
    second = await make_holder(db, card_number="YD-1002", display_name="李建军")
    third = await make_holder(db, card_number="XQ-2001", display_name="Zhang Wei")

    async def ids(q: str) -> list[str]:
        response = await client.get("/v1/holders", params={"q": q}, headers=admin)
        assert response.status == 200, await response.text()
        return [item["id"] for item in (await response.json())["items"]]

    assert await ids("YD-1002") == [second]
    assert await ids("yd-10") == [first, second]
    assert await ids("1001") == []  # the middle of a card number is not a match
    assert await ids("建") == [first, second]
    assert await ids("王建国") == [first]
    assert await ids("zhang") == [third]
    assert await ids("%") == []


async def test_walking_all_pages_with_limit_1_sees_every_holder_exactly_once(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    expected = [await make_holder(db) for _ in range(4)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/holders", params=params, headers=admin)
        assert response.status == 200
        page = await response.json()
        seen += [item["id"] for item in page["items"]]
        if len(seen) == 2:  # rows added mid-walk come after the cursor and are seen once
            expected.append(await make_holder(db))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "cursor=%25%25", "q=", "status=gone"])
async def test_bad_list_queries_are_validation_errors(
    client: TestClient, admin: dict, query: str
) -> None:
    response = await client.get(f"/v1/holders?{query}", headers=admin)
    assert response.status == 422
    assert (await response.json())["code"] == "validation_error"


def holder_routes(client: TestClient) -> list[tuple[str, str]]:
    routes = []
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/v1/holders") and route.method != "HEAD":
            routes.append((route.method, path.replace("{holder_id}", "hld_x")))
    return routes


async def test_every_holders_route_is_admin_only(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    partner = await make_partner(db)
    routes = holder_routes(client)
    assert len(routes) == 5
    for role in (Role.PARTNER, Role.SCANNER):
        headers = bearer(await make_key(db, role, partner))
        for method, path in routes:
            response = await client.request(method, path, headers=headers, json={})
            assert response.status == 403, (role, method, path)
            assert (await response.json())["code"] == "forbidden"
    for method, path in routes:
        response = await client.request(method, path, json={})
        assert response.status == 401, (method, path)
    assert await db.fetchval("SELECT count(*) FROM holders") == 0


@pytest.mark.parametrize("holder_id", ["%00", "hld_%00x", "a%20b", "x" * 101])
async def test_an_id_the_service_never_issues_is_404_not_a_server_error(
    client: TestClient, admin: dict, holder_id: str
) -> None:
    for method in ("GET", "PATCH"):
        response = await client.request(
            method, f"/v1/holders/{holder_id}", json={"region": "x"}, headers=admin
        )
        assert response.status == 404, (method, await response.text())
