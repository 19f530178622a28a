"""What a partner_manager may do with keys beyond its partner's key (docs/api.md): issue, list
and revoke its own partner's scanner keys, nothing else."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from service.domain.auth import Role
from tests.helpers import make_key, make_partner, make_staff, staff_sign_in


async def test_a_partner_manager_manages_only_its_own_scanner_keys(client: TestClient, db) -> None:
    own = await make_partner(db, name="区邮政分公司")
    other = await make_partner(db, name="老兵饭店", category="catering")
    manager = await make_staff(db, "partner_manager", own)
    headers = await staff_sign_in(client, manager.email)

    issued = await client.post(
        f"/v1/partners/{own}/keys", json={"role": "scanner", "label": "till 2"}, headers=headers
    )
    assert issued.status == 201
    key = await issued.json()
    assert key["key"].startswith("yd_") and key["partner_id"] == own
    partner_key = await client.post(
        f"/v1/partners/{own}/keys", json={"role": "partner"}, headers=headers
    )
    assert partner_key.status == 403
    foreign = await client.post(
        f"/v1/partners/{other}/keys", json={"role": "scanner"}, headers=headers
    )
    assert foreign.status == 404

    listed = await (await client.get(f"/v1/partners/{own}/keys", headers=headers)).json()
    assert key["id"] in [item["id"] for item in listed["items"]]
    assert (await client.get(f"/v1/partners/{other}/keys", headers=headers)).status == 404

    own_partner_key = await make_key(db, Role.PARTNER, own)
    partner_key_id = await db.fetchval(
        "SELECT id FROM api_keys WHERE partner_id = $1 AND role = 'partner'", own
    )
    assert own_partner_key
    assert (await client.delete(f"/v1/keys/{partner_key_id}", headers=headers)).status == 403
    revoked = await client.delete(f"/v1/keys/{key['id']}", headers=headers)
    assert revoked.status == 200 and (await revoked.json())["revoked_at"]
    event = await db.fetchrow(
        "SELECT actor, actor_role FROM audit_events WHERE action = 'key.revoke'"
    )
    assert event["actor"]["type"] == "staff" and event["actor_role"] == "partner_manager"
