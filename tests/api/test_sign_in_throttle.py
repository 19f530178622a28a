"""Sign-in throttling per client address (docs/api.md) and the length of new PINs."""

from __future__ import annotations

import asyncio
import uuid
from ipaddress import ip_network

import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.domain.errors import ApiError
from service.flows.throttle import record_failed_sign_in, refuse_if_address_throttled
from tests.helpers import STAFF_PASSWORD, make_holder, make_staff


async def sign_in(client: TestClient, card: str, pin: str = "000000", **headers: str):
    return await client.post(
        "/v1/holder-sessions", json={"card_number": card, "pin": pin}, headers=headers
    )


def unknown_card() -> str:
    return f"NONE-{uuid.uuid4().hex[:10]}"


async def test_twenty_failures_from_one_address_on_any_cards_answer_429(
    client: TestClient, db
) -> None:
    await make_holder(db, card_number="REAL-1", pin="204816")
    answers = [await sign_in(client, unknown_card()) for _ in range(20)]
    assert [a.status for a in answers] == [401] * 20
    refused = await sign_in(client, "REAL-1", "204816")  # even the right PIN of a real card
    assert refused.status == 429
    body = await refused.json()
    assert body["code"] == "too_many_attempts"
    assert 1 <= int(refused.headers["Retry-After"]) <= 15 * 60


async def test_the_count_is_shared_by_every_process(
    client: TestClient, database_url, settings, aiohttp_client
) -> None:
    other = await aiohttp_client(create_app(settings, database_url))
    for n in range(20):
        assert (await sign_in(client if n % 2 else other, unknown_card())).status == 401
    assert (await sign_in(other, unknown_card())).status == 429
    assert (await sign_in(client, unknown_card())).status == 429


async def test_behind_a_trusted_proxy_each_forwarded_address_counts_alone(
    database_url, settings, aiohttp_client
) -> None:
    proxied = settings.with_overrides(trusted_proxies=(ip_network("127.0.0.0/8"),))
    client = await aiohttp_client(create_app(proxied, database_url))
    first = {"X-Forwarded-For": "198.51.100.1"}
    for _ in range(20):
        assert (await sign_in(client, unknown_card(), **first)).status == 401
    assert (await sign_in(client, unknown_card(), **first)).status == 429
    # A client cannot escape by writing its own hop to the left of the proxy's.
    assert (
        await sign_in(client, unknown_card(), **{"X-Forwarded-For": "1.2.3.4, 198.51.100.1"})
    ).status == 429
    assert (
        await sign_in(client, unknown_card(), **{"X-Forwarded-For": "198.51.100.2"})
    ).status == 401


async def test_forwarded_addresses_are_ignored_from_an_untrusted_peer(client: TestClient) -> None:
    for n in range(20):
        spoofed = {"X-Forwarded-For": f"198.51.100.{n}"}
        assert (await sign_in(client, unknown_card(), **spoofed)).status == 401
    assert (await sign_in(client, unknown_card(), **{"X-Forwarded-For": "9.9.9.9"})).status == 429


async def test_a_limit_of_zero_turns_the_address_throttle_off(
    database_url, settings, aiohttp_client
) -> None:
    client = await aiohttp_client(
        create_app(settings.with_overrides(signin_address_limit=0), database_url)
    )
    for _ in range(22):
        assert (await sign_in(client, unknown_card())).status == 401


async def test_failures_of_any_kind_of_sign_in_count_together(client: TestClient, db) -> None:
    """What the staff sign-in calls: flows.throttle, on the same address count."""
    from datetime import UTC, datetime

    peer = "127.0.0.1"
    for _ in range(19):
        await record_failed_sign_in(db, peer, datetime.now(UTC))  # e.g. wrong passwords
    assert (await sign_in(client, unknown_card())).status == 401  # the 20th failure
    with pytest.raises(ApiError) as refused:
        await refuse_if_address_throttled(db, peer, datetime.now(UTC), limit=20)
    assert refused.value.code == "too_many_attempts" and "Retry-After" in refused.value.headers


async def test_concurrent_failures_are_each_counted(client: TestClient, db) -> None:
    await asyncio.gather(*(sign_in(client, unknown_card()) for _ in range(10)))
    assert await db.fetchval("SELECT failures FROM sign_in_address_failures") == 10


# --- PIN length -----------------------------------------------------------------------------


@pytest.mark.parametrize("pin", ["1234", "12345"])
async def test_a_new_pin_shorter_than_six_digits_is_refused(client: TestClient, admin, db, pin):
    created = await client.post(
        "/v1/holders",
        json={
            "card_number": "PIN-1",
            "category": "veteran",
            "display_name": "王",
            "valid_until": "2030-12-31",
            "pin": pin,
        },
        headers=admin,
    )
    assert created.status == 422
    assert (await created.json())["errors"][0]["field"] == "pin"
    holder = await make_holder(db, card_number="PIN-2")
    changed = await client.patch(f"/v1/holders/{holder}", json={"pin": pin}, headers=admin)
    assert changed.status == 422


async def test_a_holder_keeps_an_older_four_digit_pin_until_it_is_changed(
    client: TestClient, db
) -> None:
    await make_holder(db, card_number="OLD-PIN", pin="4321")  # as stored before the rule
    assert (await sign_in(client, "OLD-PIN", "4321")).status == 201


async def staff_sign_in_attempt(client: TestClient, email: str, password: str):
    return await client.post("/v1/staff-sessions", json={"email": email, "password": password})


async def test_staff_and_holder_failures_from_one_address_count_together(
    client: TestClient, db
) -> None:
    account = await make_staff(db)
    # Spread over many emails and cards, so no account or card lockout is reached.
    for n in range(10):
        assert (await sign_in(client, unknown_card())).status == 401
        wrong = await staff_sign_in_attempt(client, f"nobody{n}@example.org", "wrong-password-x")
        assert wrong.status == 401
    refused = await staff_sign_in_attempt(client, account.email, STAFF_PASSWORD)
    assert refused.status == 429  # even the right password, from this address
    assert (await refused.json())["code"] == "too_many_attempts"
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await sign_in(client, unknown_card())).status == 429
