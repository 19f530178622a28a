"""Fuzzing the staff routes signed in as a bureau_admin with the cookie and the CSRF
header (docs/staff.md): no generated request may produce a 5xx."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import requests
from hypothesis import HealthCheck, settings

from service.db.pool import init_connection
from tests.api.test_fuzz import LiveServer, live_server, schema  # noqa: F401 - the fixture
from tests.helpers import STAFF_PASSWORD, make_staff

#: Generated requests: they try the HTTP layer, the same on every PostgreSQL (see .ci/run).
pytestmark = pytest.mark.fuzz

ADMIN_EMAIL = "fuzz-admin@bureau.example"


@pytest.fixture(scope="module")
def bureau_admin(live_server: LiveServer) -> str:  # noqa: F811 - the imported fixture
    async def seed() -> None:
        conn = await asyncpg.connect(live_server.database_url)
        await init_connection(conn)
        try:
            await make_staff(conn, "bureau_admin", email=ADMIN_EMAIL)
        finally:
            await conn.close()

    asyncio.run(seed())
    return ADMIN_EMAIL


def _sign_in(base_url: str) -> dict[str, str]:
    answer = requests.post(
        f"{base_url}/v1/staff-sessions",
        json={"email": ADMIN_EMAIL, "password": STAFF_PASSWORD},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return {
        "Cookie": f"youdai_staff={answer.cookies['youdai_staff']}",
        "X-CSRF-Token": answer.json()["csrf_token"],
    }


@schema.include(path_regex=r"^/v1/staff").parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_generated_staff_request_causes_a_server_error(
    case,
    live_server: LiveServer,  # noqa: F811 - the imported fixture
    bureau_admin: str,
) -> None:
    # A fresh session per case: a generated sign-out must not end the others'.
    response = case.call(base_url=live_server.url, headers=_sign_in(live_server.url), timeout=10)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/problem+json"), (case.method, case.path)
