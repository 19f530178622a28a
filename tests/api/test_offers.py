"""Offers through HTTP: the four kinds, validation, life cycle, edits once redeemed,
who sees what, pagination and the audit trail."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.domain.auth import Role
from tests.helpers import bearer, make_key, make_offer, make_partner

KIND_FIELD = {
    "percent_off": ("percent_bp", 1000),
    "amount_off": ("amount_off", 500),
    "fixed_price": ("fixed_price", 990),
    "service": ("nominal_value", 2000),
}

#: The docs/api.md example, with a window.
DOCUMENTED_EXAMPLE = {
    "title": "邮政寄递九折",
    "kind": "percent_off",
    "percent_bp": 1000,
    "max_discount": 5000,
    "min_purchase": 1000,
    "starts_at": "2026-01-01T00:00:00+08:00",
    "ends_at": "2027-01-01T00:00:00+08:00",
    "eligible_categories": ["veteran", "martyr_family"],
    "uses_per_voucher": 1,
    "holder_limit": {"count": 2, "period": "month"},
    "total_redemptions": 1000,
    "budget": 5000000,
    "voucher_valid_days": 30,
}


@pytest.fixture
async def partner_a(db: asyncpg.Connection) -> str:
    return await make_partner(db, name="区邮政分公司")


@pytest.fixture
async def partner_b(db: asyncpg.Connection) -> str:
    return await make_partner(db, name="老兵饭店", category="catering")


@pytest.fixture
async def key_a(db: asyncpg.Connection, partner_a: str) -> dict[str, str]:
    return bearer(await make_key(db, Role.PARTNER, partner_a))


@pytest.fixture
async def key_b(db: asyncpg.Connection, partner_b: str) -> dict[str, str]:
    return bearer(await make_key(db, Role.PARTNER, partner_b))


async def create(client: TestClient, headers: dict, expect: int = 201, **body) -> dict:
    response = await client.post("/v1/offers", json=body, headers=headers)
    assert response.status == expect, await response.text()
    return await response.json()


async def patch(client: TestClient, headers: dict, offer_id: str, expect: int = 200, **body):
    response = await client.patch(f"/v1/offers/{offer_id}", json=body, headers=headers)
    assert response.status == expect, await response.text()
    return await response.json()


def error_fields(problem: dict) -> list[str]:
    return [entry["field"] for entry in problem.get("errors", [])]


# --- creating ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KIND_FIELD))
async def test_each_kind_is_created_as_a_draft(client: TestClient, key_a, partner_a, kind) -> None:
    name, value = KIND_FIELD[kind]
    offer = await create(client, key_a, title="优待", kind=kind, **{name: value})
    assert offer["id"].startswith("ofr_")
    assert offer["status"] == "draft"
    assert offer["partner_id"] == partner_a
    assert offer["kind"] == kind
    assert offer[name] == value
    assert offer["currency"] == "CNY"
    assert offer["uses_per_voucher"] == 1
    assert offer["eligible_categories"] == []
    assert offer["holder_limit"] is None
    assert (offer["redeemed_count"], offer["spent"]) == (0, 0)
    fetched = await client.get(f"/v1/offers/{offer['id']}", headers=key_a)
    assert await fetched.json() == offer


async def test_the_spec_example_round_trips(client: TestClient, admin, partner_a) -> None:
    offer = await create(client, admin, partner_id=partner_a, **DOCUMENTED_EXAMPLE)
    for name in ("max_discount", "min_purchase", "total_redemptions", "budget", "holder_limit"):
        assert offer[name] == DOCUMENTED_EXAMPLE[name]
    assert offer["eligible_categories"] == ["veteran", "martyr_family"]
    assert offer["starts_at"] == "2025-12-31T16:00:00+00:00"
    assert offer["amount_off"] is None


@pytest.mark.parametrize("kind", list(KIND_FIELD))
async def test_a_kind_without_its_field_is_refused_naming_it(
    client: TestClient, key_a, kind
) -> None:
    problem = await create(client, key_a, 422, title="优待", kind=kind)
    assert problem["code"] == "validation_error"
    assert error_fields(problem) == [KIND_FIELD[kind][0]]


@pytest.mark.parametrize(
    ("kind", "foreign"),
    [("percent_off", "nominal_value"), ("amount_off", "max_discount"), ("service", "percent_bp")],
)
async def test_a_field_of_another_kind_is_refused_naming_it(
    client: TestClient, key_a, kind, foreign
) -> None:
    name, value = KIND_FIELD[kind]
    problem = await create(
        client, key_a, 422, title="优待", kind=kind, **{name: value, foreign: 10}
    )
    assert problem["code"] == "validation_error"
    assert error_fields(problem) == [foreign]


async def test_a_window_ending_before_it_starts_is_refused(client: TestClient, key_a) -> None:
    window = {"starts_at": "2026-06-01T00:00:00+08:00", "ends_at": "2026-05-31T23:59:59+08:00"}
    problem = await create(client, key_a, 422, **{**DOCUMENTED_EXAMPLE, **window})
    assert error_fields(problem) == ["ends_at"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("starts_at", "2026-01-01T00:00:00"),  # no offset
        ("ends_at", "2026-12-31"),
        ("starts_at", "1999-12-31T23:59:59+00:00"),
        ("ends_at", "2200-01-01T00:00:00-08:00"),
        ("percent_bp", 0),
        ("percent_bp", 10001),
        ("percent_bp", "1000"),
        ("budget", 12.5),
        ("uses_per_voucher", 0),
        ("uses_per_voucher", True),
        ("eligible_categories", ["veteran", "veteran"]),
        ("eligible_categories", ["tourist"]),
        ("holder_limit", {"count": 0, "period": "month"}),
        ("holder_limit", {"count": 2, "period": "fortnight"}),
        ("holder_limit", {"count": 2}),
        ("colour", "red"),
        ("title", "邮政\x00九折"),
        ("title", "两行\n标题"),
        ("description", "\x00"),
    ],
)
async def test_bad_fields_are_refused_by_name(client: TestClient, key_a, field, value) -> None:
    problem = await create(client, key_a, 422, **{**DOCUMENTED_EXAMPLE, field: value})
    assert problem["code"] == "validation_error"
    assert all(name.split(".")[0] == field for name in error_fields(problem)), problem
    assert error_fields(problem)


async def test_window_years_are_read_as_written_so_the_documented_pattern_is_the_rule(
    client: TestClient, key_a
) -> None:
    """2000-01-01T00:00+08:00 is still 1999 in UTC, and 2199-12-31T23:00-08:00 already
    2200: both are in range, as the document's pattern on the text says."""
    window = {"starts_at": "2000-01-01T00:00:00+08:00", "ends_at": "2199-12-31T23:00:00-08:00"}
    offer = await create(client, key_a, **{**DOCUMENTED_EXAMPLE, **window})
    assert offer["starts_at"] == "1999-12-31T16:00:00+00:00"
    assert offer["ends_at"] == "2200-01-01T07:00:00+00:00"


async def test_admin_must_name_the_partner(client: TestClient, admin) -> None:
    problem = await create(client, admin, 422, **DOCUMENTED_EXAMPLE)
    assert error_fields(problem) == ["partner_id"]


async def test_admin_creating_for_an_unknown_partner_gets_not_found(
    client: TestClient, admin
) -> None:
    problem = await create(client, admin, 404, partner_id="ptn_NOPE", **DOCUMENTED_EXAMPLE)
    assert problem["code"] == "not_found"


async def test_a_terminated_partner_gets_no_new_offer(client: TestClient, admin, db) -> None:
    gone = await make_partner(db, status="terminated")
    problem = await create(client, admin, 409, partner_id=gone, **DOCUMENTED_EXAMPLE)
    assert problem["code"] == "conflict"
    assert await db.fetchval("SELECT count(*) FROM offers") == 0


async def test_a_terminated_partners_offer_cannot_be_republished(
    client: TestClient, admin, db, partner_a
) -> None:
    offer_id = await make_offer(db, partner_a, status="paused")
    await db.execute("UPDATE partners SET status = 'terminated' WHERE id = $1", partner_a)
    problem = await patch(client, admin, offer_id, 409, status="active")
    assert problem["code"] == "conflict"
    await patch(client, admin, offer_id, status="ended")


# --- who may do what --------------------------------------------------------------------


async def test_partner_key_creates_for_its_own_partner_by_default(
    client: TestClient, key_a, partner_a
) -> None:
    offer = await create(client, key_a, **DOCUMENTED_EXAMPLE)
    assert offer["partner_id"] == partner_a
    same = await create(client, key_a, partner_id=partner_a, **DOCUMENTED_EXAMPLE)
    assert same["partner_id"] == partner_a


async def test_partner_key_naming_another_partner_is_forbidden(
    client: TestClient, key_a, partner_b, db
) -> None:
    problem = await create(client, key_a, 403, partner_id=partner_b, **DOCUMENTED_EXAMPLE)
    assert problem["code"] == "forbidden"
    assert await db.fetchval("SELECT count(*) FROM offers") == 0


async def test_partner_cannot_see_or_edit_another_partners_offer(
    client: TestClient, key_a, partner_b, db
) -> None:
    theirs = await make_offer(db, partner_b, title="老兵饭店八折")
    response = await client.get(f"/v1/offers/{theirs}", headers=key_a)
    assert response.status == 404
    assert (await response.json())["code"] == "not_found"
    problem = await patch(client, key_a, theirs, 404, title="改掉", status="paused")
    assert problem["code"] == "not_found"
    row = await db.fetchrow("SELECT title, status FROM offers WHERE id = $1", theirs)
    assert (row["title"], row["status"]) == ("老兵饭店八折", "active")
    for query in ("", f"?partner_id={partner_b}", "?q=老兵"):
        listed = await (await client.get(f"/v1/offers{query}", headers=key_a)).json()
        assert listed["items"] == [], query


async def test_partner_list_shows_its_own_and_admin_sees_all(
    client: TestClient, admin, key_a, partner_a, partner_b, db
) -> None:
    mine = await make_offer(db, partner_a)
    theirs = await make_offer(db, partner_b)
    listed = await (await client.get("/v1/offers", headers=key_a)).json()
    assert [item["id"] for item in listed["items"]] == [mine]
    everything = await (await client.get("/v1/offers", headers=admin)).json()
    assert sorted(item["id"] for item in everything["items"]) == sorted([mine, theirs])
    response = await client.get(f"/v1/offers/{theirs}", headers=admin)
    assert response.status == 200


async def test_scanner_key_is_forbidden_on_every_offers_route(
    client: TestClient, db, partner_a
) -> None:
    scanner = bearer(await make_key(db, Role.SCANNER, partner_a))
    offer_id = await make_offer(db, partner_a)
    attempts = [
        client.post("/v1/offers", json=DOCUMENTED_EXAMPLE, headers=scanner),
        client.get("/v1/offers", headers=scanner),
        client.get(f"/v1/offers/{offer_id}", headers=scanner),
        client.patch(f"/v1/offers/{offer_id}", json={"status": "paused"}, headers=scanner),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status == 403
        assert (await response.json())["code"] == "forbidden"
    assert await db.fetchval("SELECT status FROM offers WHERE id = $1", offer_id) == "active"
    assert await db.fetchval("SELECT count(*) FROM offers") == 1


async def test_no_key_is_unauthenticated(client: TestClient) -> None:
    response = await client.get("/v1/offers")
    assert response.status == 401


# --- changing ---------------------------------------------------------------------------


async def test_status_follows_the_life_cycle(client: TestClient, key_a) -> None:
    offer = await create(client, key_a, **DOCUMENTED_EXAMPLE)
    for status in ("active", "paused", "active", "paused", "ended"):
        changed = await patch(client, key_a, offer["id"], status=status)
        assert changed["status"] == status


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ((), "paused"),
        ((), "ended"),
        (("active",), "draft"),
        (("active", "paused"), "draft"),
        (("active", "ended"), "active"),
        (("active", "ended"), "paused"),
        (("active", "ended"), "draft"),
    ],
)
async def test_other_status_moves_are_conflicts(
    client: TestClient, key_a, db, path, wanted
) -> None:
    offer = await create(client, key_a, **DOCUMENTED_EXAMPLE)
    for status in path:
        await patch(client, key_a, offer["id"], status=status)
    problem = await patch(client, key_a, offer["id"], 409, status=wanted)
    assert problem["code"] == "conflict"
    expected = path[-1] if path else "draft"
    assert await db.fetchval("SELECT status FROM offers WHERE id = $1", offer["id"]) == expected


async def test_switching_kind_clears_the_old_kinds_fields(client: TestClient, key_a) -> None:
    offer = await create(client, key_a, **DOCUMENTED_EXAMPLE)
    changed = await patch(client, key_a, offer["id"], kind="amount_off", amount_off=300)
    assert (changed["kind"], changed["amount_off"]) == ("amount_off", 300)
    assert (changed["percent_bp"], changed["max_discount"]) == (None, None)


async def test_patch_with_a_field_of_another_kind_is_refused(client: TestClient, key_a) -> None:
    offer = await create(client, key_a, **DOCUMENTED_EXAMPLE)
    problem = await patch(client, key_a, offer["id"], 422, nominal_value=100)
    assert error_fields(problem) == ["nominal_value"]


async def test_patch_cannot_move_an_offer_to_another_partner(
    client: TestClient, admin, partner_a, partner_b
) -> None:
    offer = await create(client, admin, partner_id=partner_a, **DOCUMENTED_EXAMPLE)
    problem = await patch(client, admin, offer["id"], 422, partner_id=partner_b)
    assert error_fields(problem) == ["partner_id"]


@pytest.mark.parametrize("offer_id", ["ofr_NOPE", "%00"])
async def test_an_unknown_offer_is_not_found(client: TestClient, admin, offer_id) -> None:
    response = await client.get(f"/v1/offers/{offer_id}", headers=admin)
    assert response.status == 404
    problem = await patch(client, admin, offer_id, 404, title="x")
    assert problem["code"] == "not_found"


async def test_patch_can_clear_and_set_the_holder_limit(client: TestClient, key_a) -> None:
    offer = await create(client, key_a, **DOCUMENTED_EXAMPLE)
    cleared = await patch(client, key_a, offer["id"], holder_limit=None)
    assert cleared["holder_limit"] is None
    changed = await patch(client, key_a, offer["id"], holder_limit={"count": 1, "period": "ever"})
    assert changed["holder_limit"] == {"count": 1, "period": "ever"}


# --- once redeemed ----------------------------------------------------------------------


@pytest.fixture
async def redeemed_offer(client: TestClient, key_a, db) -> dict:
    """An active offer with 3 redemptions worth 1500 fen, as redemption would leave it."""
    offer = await create(client, key_a, **{**DOCUMENTED_EXAMPLE, "uses_per_voucher": 2})
    await patch(client, key_a, offer["id"], status="active")
    await db.execute(
        "UPDATE offers SET redeemed_count = 3, spent = 1500 WHERE id = $1", offer["id"]
    )
    return offer


@pytest.mark.parametrize(
    "changes",
    [
        {"percent_bp": 1500},
        {"max_discount": 9000},
        {"min_purchase": None},
        {"kind": "amount_off", "amount_off": 300},
    ],
)
async def test_pricing_of_a_redeemed_offer_cannot_change(
    client: TestClient, key_a, db, redeemed_offer, changes
) -> None:
    problem = await patch(client, key_a, redeemed_offer["id"], 409, **changes)
    assert problem["code"] == "conflict"
    first = next(iter(changes))
    assert first in problem["detail"]
    assert first in error_fields(problem)
    row = await db.fetchrow("SELECT * FROM offers WHERE id = $1", redeemed_offer["id"])
    assert (row["kind"], row["percent_bp"], row["min_purchase"]) == ("percent_off", 1000, 1000)


async def test_limits_of_a_redeemed_offer_may_be_raised_and_its_window_extended(
    client: TestClient, key_a, redeemed_offer
) -> None:
    changed = await patch(
        client,
        key_a,
        redeemed_offer["id"],
        total_redemptions=2000,
        budget=9000000,
        uses_per_voucher=3,
        holder_limit={"count": 4, "period": "month"},
        starts_at="2025-12-01T00:00:00+08:00",
        ends_at="2027-06-30T00:00:00+08:00",
        title="邮政寄递九折（延期）",
    )
    assert (changed["total_redemptions"], changed["budget"]) == (2000, 9000000)
    assert changed["holder_limit"] == {"count": 4, "period": "month"}
    assert changed["ends_at"] == "2027-06-29T16:00:00+00:00"
    lowered = await patch(client, key_a, redeemed_offer["id"], total_redemptions=3, budget=1500)
    assert (lowered["total_redemptions"], lowered["budget"]) == (3, 1500)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"total_redemptions": 2}, "total_redemptions"),
        ({"budget": 1499}, "budget"),
        ({"uses_per_voucher": 1}, "uses_per_voucher"),
        ({"holder_limit": {"count": 1, "period": "month"}}, "holder_limit"),
        ({"ends_at": "2026-06-30T00:00:00+08:00"}, "ends_at"),
        ({"starts_at": "2026-02-01T00:00:00+08:00"}, "starts_at"),
    ],
)
async def test_tightening_a_redeemed_offer_below_use_is_a_conflict(
    client: TestClient, key_a, db, redeemed_offer, changes, field
) -> None:
    problem = await patch(client, key_a, redeemed_offer["id"], 409, **changes)
    assert problem["code"] == "conflict"
    assert error_fields(problem) == [field]
    assert field in problem["detail"]
    after = await (await client.get(f"/v1/offers/{redeemed_offer['id']}", headers=key_a)).json()
    assert after["holder_limit"] == DOCUMENTED_EXAMPLE["holder_limit"]
    for name in ("total_redemptions", "budget", "starts_at", "ends_at"):
        assert after[name] == redeemed_offer[name]
    assert after["uses_per_voucher"] == 2


async def test_database_refuses_counters_past_total_or_budget(db, partner_a) -> None:
    offer_id = await make_offer(db, partner_a, total_redemptions=2, budget=1000)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE offers SET redeemed_count = 3 WHERE id = $1", offer_id)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE offers SET spent = 1001 WHERE id = $1", offer_id)


# --- lists ------------------------------------------------------------------------------


async def test_list_filters_by_status_partner_and_title(
    client: TestClient, admin, db, partner_a, partner_b
) -> None:
    await make_offer(db, partner_a, title="邮政寄递九折")
    await make_offer(db, partner_a, title="集邮册八折", status="draft")
    await make_offer(db, partner_b, title="老兵饭店套餐", status="paused")

    async def titles(query: str) -> list[str]:
        response = await client.get(f"/v1/offers?{query}", headers=admin)
        assert response.status == 200, await response.text()
        return sorted(item["title"] for item in (await response.json())["items"])

    assert await titles("status=draft") == ["集邮册八折"]
    assert await titles(f"partner_id={partner_b}") == ["老兵饭店套餐"]
    assert await titles("q=邮") == ["邮政寄递九折", "集邮册八折"]
    assert await titles(f"status=active&partner_id={partner_a}") == ["邮政寄递九折"]
    for bad in ("status=expired", "q=%00", "partner_id=%00", "category=postal"):
        response = await client.get(f"/v1/offers?{bad}", headers=admin)
        assert response.status == 422, bad


async def test_list_filters_by_the_holder_category_an_offer_is_open_to(
    client: TestClient, admin, db, partner_a
) -> None:
    await make_offer(db, partner_a, title="所有优待对象")
    await make_offer(db, partner_a, title="烈属专享", eligible_categories=["martyr_family"])
    await make_offer(
        db, partner_a, title="老兵与伤残老兵", eligible_categories=["veteran", "disabled_veteran"]
    )

    async def titles(category: str) -> list[str]:
        response = await client.get(f"/v1/offers?category={category}", headers=admin)
        assert response.status == 200, await response.text()
        return sorted(item["title"] for item in (await response.json())["items"])

    assert await titles("martyr_family") == ["所有优待对象", "烈属专享"]
    assert await titles("disabled_veteran") == ["所有优待对象", "老兵与伤残老兵"]
    assert await titles("other") == ["所有优待对象"]


async def test_walking_pages_of_one_sees_every_offer_once_while_rows_are_added(
    client: TestClient, admin, db, partner_a
) -> None:
    for index in range(5):
        await make_offer(db, partner_a, title=f"优待 {index}")
    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(f"/v1/offers?{query}", headers=admin)).json()
        assert len(page["items"]) <= 1
        seen += [item["id"] for item in page["items"]]
        if len(seen) == 2:
            await make_offer(db, partner_a, title="中途加入")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    all_ids = [row["id"] for row in await db.fetch("SELECT id FROM offers ORDER BY id")]
    assert seen == all_ids
    assert len(seen) == 6


# --- audit ------------------------------------------------------------------------------


async def test_create_update_and_status_change_are_audited(
    client: TestClient, db, key_a, partner_a
) -> None:
    offer = await create(client, key_a, **DOCUMENTED_EXAMPLE)
    await patch(client, key_a, offer["id"], title="新标题", budget=6000000)
    await patch(client, key_a, offer["id"], status="active")
    await patch(client, key_a, offer["id"], status="active")  # no change, no event
    events = await db.fetch(
        "SELECT * FROM audit_events WHERE entity_type = 'offer' AND entity_id = $1 ORDER BY id",
        offer["id"],
    )
    assert [event["action"] for event in events] == [
        "offer.create",
        "offer.update",
        "offer.status",
    ]
    key_id = await db.fetchval("SELECT id FROM api_keys WHERE partner_id = $1", partner_a)
    assert {(event["actor_id"], event["actor_role"]) for event in events} == {(key_id, "partner")}
    created = events[0]["changes"]
    assert created["partner_id"] == [None, partner_a]
    assert created["percent_bp"] == [None, 1000]
    assert created["starts_at"] == [None, "2025-12-31T16:00:00+00:00"]
    assert events[1]["changes"] == {
        "title": ["邮政寄递九折", "新标题"],
        "budget": [5000000, 6000000],
    }
    assert events[2]["changes"] == {"status": ["draft", "active"]}


async def test_a_refused_change_writes_no_audit_event(client: TestClient, db, key_a) -> None:
    offer = await create(client, key_a, **DOCUMENTED_EXAMPLE)
    await patch(client, key_a, offer["id"], 409, status="ended")
    await patch(client, key_a, offer["id"], 422, amount_off=5)
    count = await db.fetchval("SELECT count(*) FROM audit_events WHERE entity_id = $1", offer["id"])
    assert count == 1
