"""API keys: shown once, stored hashed, revoked at once, roles enforced."""

import hashlib

import asyncpg
from aiohttp.test_utils import TestClient

from service.domain.auth import Role
from tests.helpers import bearer, make_key, make_partner


async def issue(client: TestClient, admin, partner_id: str, role: str = "scanner") -> dict:
    response = await client.post(
        f"/v1/partners/{partner_id}/keys", json={"role": role, "label": "till 1"}, headers=admin
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def test_issued_key_is_shown_once_and_stored_only_as_sha256(
    client: TestClient, admin, db: asyncpg.Connection
) -> None:
    partner_id = await make_partner(db)
    created = await issue(client, admin, partner_id)
    secret = created["key"]
    assert secret.startswith("yd_") and len(secret) >= 3 + 43
    assert set(created) == {
        "id",
        "role",
        "label",
        "partner_id",
        "created_at",
        "last_used_at",
        "revoked_at",
        "key",
    }
    row = await db.fetchrow("SELECT * FROM api_keys WHERE id = $1", created["id"])
    assert bytes(row["key_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert secret not in str(dict(row))
    listed = await (await client.get(f"/v1/partners/{partner_id}/keys", headers=admin)).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert "key" not in listed["items"][0]
    assert secret not in str(listed)


async def test_key_use_is_recorded_in_last_used_at(
    client: TestClient, admin, db: asyncpg.Connection
) -> None:
    partner_id = await make_partner(db)
    created = await issue(client, admin, partner_id, role="partner")
    assert (
        await client.get(f"/v1/partners/{partner_id}", headers=bearer(created["key"]))
    ).status == 200
    listed = await (await client.get(f"/v1/partners/{partner_id}/keys", headers=admin)).json()
    assert listed["items"][0]["last_used_at"] is not None


async def test_revoked_key_is_refused_on_its_very_next_request(
    client: TestClient, admin, db: asyncpg.Connection
) -> None:
    partner_id = await make_partner(db)
    created = await issue(client, admin, partner_id, role="partner")
    headers = bearer(created["key"])
    assert (await client.get(f"/v1/partners/{partner_id}", headers=headers)).status == 200
    revoked = await client.delete(f"/v1/keys/{created['id']}", headers=admin)
    assert revoked.status == 200
    assert (await revoked.json())["revoked_at"] is not None
    response = await client.get(f"/v1/partners/{partner_id}", headers=headers)
    assert response.status == 401
    assert (await response.json())["code"] == "unauthenticated"


async def test_revoking_twice_keeps_the_first_revocation(client: TestClient, admin, db) -> None:
    partner_id = await make_partner(db)
    created = await issue(client, admin, partner_id)
    first = await (await client.delete(f"/v1/keys/{created['id']}", headers=admin)).json()
    second = await (await client.delete(f"/v1/keys/{created['id']}", headers=admin)).json()
    assert first["revoked_at"] == second["revoked_at"]


async def test_unknown_key_and_malformed_header_are_unauthenticated(client: TestClient) -> None:
    for header in ("Bearer yd_" + "A" * 43, "Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-key"):
        response = await client.get("/v1/partners", headers={"Authorization": header})
        assert response.status == 401, header
        assert (await response.json())["code"] == "unauthenticated"


async def test_missing_key_is_unauthenticated(client: TestClient) -> None:
    response = await client.get("/v1/partners")
    assert response.status == 401


async def test_scanner_key_cannot_manage_keys_or_partners(client: TestClient, db) -> None:
    partner_id = await make_partner(db)
    scanner = bearer(await make_key(db, Role.SCANNER, partner_id))
    for method, path in (
        ("POST", f"/v1/partners/{partner_id}/keys"),
        ("GET", f"/v1/partners/{partner_id}/keys"),
        ("GET", "/v1/partners"),
        ("POST", "/v1/partners"),
    ):
        response = await client.request(method, path, headers=scanner, json={})
        assert response.status == 403, (method, path)
        assert (await response.json())["code"] == "forbidden"


async def test_keys_of_an_unknown_partner_are_not_found(client: TestClient, admin) -> None:
    response = await client.post(
        "/v1/partners/ptn_nope/keys", json={"role": "scanner"}, headers=admin
    )
    assert response.status == 404


async def test_revoking_an_unknown_key_is_not_found(client: TestClient, admin) -> None:
    assert (await client.delete("/v1/keys/key_nope", headers=admin)).status == 404


async def test_key_issue_and_revoke_are_audited_without_the_secret(
    client: TestClient, admin, db
) -> None:
    partner_id = await make_partner(db)
    created = await issue(client, admin, partner_id)
    await client.delete(f"/v1/keys/{created['id']}", headers=admin)
    events = await db.fetch(
        "SELECT action, changes::text AS changes FROM audit_events "
        "WHERE entity_id = $1 ORDER BY id",
        created["id"],
    )
    assert [e["action"] for e in events] == ["key.issue", "key.revoke"]
    assert all(created["key"] not in e["changes"] for e in events)
