"""`youdai serve --demo` also makes a bureau_admin and the post office's partner_manager
and prints their emails and passwords (docs/running.md, docs/staff.md): fresh ones at every
start."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from service.demo import load_demo

_STAFF = re.compile(r"(bureau_admin|partner_manager)\s+(\S+@\S+)\s+password (\S+)")


async def _printed_staff(settings, database_url) -> dict[str, tuple[str, str]]:
    printed = await load_demo(settings, database_url)
    found = {role: (email, password) for role, email, password in _STAFF.findall(printed)}
    assert set(found) == {"bureau_admin", "partner_manager"}, printed
    assert "admin key" in printed  # the key lines are still there
    return found


async def _sign_in(client: TestClient, email: str, password: str):
    response = await client.post("/v1/staff-sessions", json={"email": email, "password": password})
    client.session.cookie_jar.clear()
    return response


async def test_demo_staff_sign_in_with_the_printed_passwords(
    client: TestClient, settings, database_url
) -> None:
    first = await _printed_staff(settings, database_url)
    admin = await _sign_in(client, *first["bureau_admin"])
    manager = await _sign_in(client, *first["partner_manager"])
    assert admin.status == 201 and manager.status == 201
    assert (await admin.json())["staff"]["role"] == "bureau_admin"
    body = await manager.json()
    partner = await client.get(
        f"/v1/partners/{body['staff']['partner_id']}",
        headers={"Cookie": f"youdai_staff={manager.cookies['youdai_staff'].value}"},
    )
    assert "邮政" in (await partner.json())["name"]

    second = await _printed_staff(settings, database_url)
    assert second["bureau_admin"][0] == first["bureau_admin"][0]
    assert second["bureau_admin"][1] != first["bureau_admin"][1]
    assert (await _sign_in(client, *second["bureau_admin"])).status == 201
    assert (await _sign_in(client, *first["bureau_admin"])).status == 401
