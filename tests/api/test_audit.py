"""GET /v1/audit-events: who changed what, filtered and paginated, admin only."""

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from aiohttp.test_utils import TestClient

from service.domain.auth import Role
from tests.helpers import bearer, make_key, make_partner


async def test_admin_reads_events_newest_first_filtered_by_entity_and_actor(
    client: TestClient, admin
) -> None:
    created = await client.post(
        "/v1/partners", json={"name": "Clinic", "category": "health"}, headers=admin
    )
    partner_id = (await created.json())["id"]
    await client.patch(f"/v1/partners/{partner_id}", json={"status": "active"}, headers=admin)
    await client.post(f"/v1/partners/{partner_id}/keys", json={"role": "scanner"}, headers=admin)

    page = await (
        await client.get(f"/v1/audit-events?entity=partner&entity_id={partner_id}", headers=admin)
    ).json()
    # docs/api.md: things that happen are listed newest first.
    assert [e["action"] for e in page["items"]] == ["partner.status", "partner.create"]
    actor = page["items"][0]["actor_id"]
    assert actor.startswith("key_") and page["items"][0]["actor_role"] == "admin"

    by_actor = await (await client.get(f"/v1/audit-events?actor={actor}", headers=admin)).json()
    assert {e["action"] for e in by_actor["items"]} == {
        "partner.create",
        "partner.status",
        "key.issue",
    }


async def test_time_filters_and_pagination(client: TestClient, admin, db) -> None:
    for index in range(3):
        await make_partner(db, name=f"p{index}", status="pending")
    future = quote((datetime.now(UTC) + timedelta(hours=1)).isoformat())
    past = quote((datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert (await (await client.get(f"/v1/audit-events?from={future}", headers=admin)).json())[
        "items"
    ] == []
    seen, cursor = [], None
    while True:
        query = f"from={past}&limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(f"/v1/audit-events?{query}", headers=admin)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == await db.fetchval("SELECT count(*) FROM audit_events")
    assert seen == sorted(seen, reverse=True)  # newest first, across pages


async def test_naive_time_filter_is_refused(client: TestClient, admin) -> None:
    response = await client.get("/v1/audit-events?from=2026-01-01T00:00:00", headers=admin)
    assert response.status == 422


async def test_time_filters_take_local_dates_like_every_list(
    client: TestClient, admin, db, settings
) -> None:
    await make_partner(db, name="today", status="pending")
    today = datetime.now(settings.timezone).date()
    tomorrow = today + timedelta(days=1)

    async def events(query: str) -> list:
        response = await client.get(f"/v1/audit-events?{query}", headers=admin)
        assert response.status == 200, await response.text()
        return (await response.json())["items"]

    everything = await db.fetchval("SELECT count(*) FROM audit_events")
    assert everything > 0
    assert len(await events(f"from={today}&to={today}")) == everything  # `to` takes its day
    assert await events(f"from={tomorrow}") == []
    assert await events(f"to={today - timedelta(days=1)}") == []


async def test_partner_key_cannot_read_the_audit_log(client: TestClient, db) -> None:
    partner_id = await make_partner(db)
    headers = bearer(await make_key(db, Role.PARTNER, partner_id))
    assert (await client.get("/v1/audit-events", headers=headers)).status == 403
