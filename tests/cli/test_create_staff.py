"""`youdai create-staff`: the first bureau_admin, with a one-time setup link printed alone
on the last line of stdout (docs/staff.md)."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient

from tests.conftest import cli_env
from tests.helpers import STAFF_PASSWORD, staff_sign_in


def youdai(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=cli_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_create_staff_prints_a_setup_link_that_works_once(
    client: TestClient, database_url: str
) -> None:
    run = youdai(
        database_url, "create-staff", "--email", "Chief@Bureau.example",
        "--role", "bureau_admin", "--name", "王主任",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    link = run.stdout.strip().splitlines()[-1]
    assert link.startswith("http") and " " not in link
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert token not in run.stderr

    setup = await client.post(
        "/v1/staff/setup", json={"setup_token": token, "password": STAFF_PASSWORD}
    )
    assert setup.status == 204
    headers = await staff_sign_in(client, "chief@bureau.example")
    me = await (await client.get("/v1/staff/me", headers=headers)).json()
    assert (me["role"], me["display_name"]) == ("bureau_admin", "王主任")


def test_create_staff_refuses_a_partner_manager_without_a_partner(database_url: str) -> None:
    run = youdai(
        database_url, "create-staff", "--email", "m@x.example", "--role", "partner_manager"
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "partner_id" in run.stderr
