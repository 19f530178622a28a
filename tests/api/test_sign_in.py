"""Holder sign-in: sessions, the PIN lockout (shared by every process), inactive cards."""

import asyncio

import asyncpg
from aiohttp.test_utils import TestClient

from service.app import create_app
from tests.helpers import bearer, make_holder

CARD = "YD-2026-0001"
PIN = "204816"


async def sign_in(client: TestClient, card: str = CARD, pin: str = PIN):
    return await client.post("/v1/holder-sessions", json={"card_number": card, "pin": pin})


async def test_right_pin_opens_a_session_that_reaches_me(client: TestClient, db) -> None:
    holder_id = await make_holder(db, card_number=CARD, pin=PIN)
    response = await sign_in(client)
    assert response.status == 201
    session = await response.json()
    assert set(session) == {"token", "expires_at"}
    me = await client.get("/v1/me", headers=bearer(session["token"]))
    assert me.status == 200
    body = await me.json()
    assert body["id"] == holder_id and "pin" not in body and "pin_hash" not in body


async def test_card_number_is_matched_without_regard_to_case(client: TestClient, db) -> None:
    await make_holder(db, card_number=CARD, pin=PIN)
    assert (await sign_in(client, card=CARD.lower())).status == 201


async def test_unknown_card_and_wrong_pin_get_the_same_answer(client: TestClient, db) -> None:
    await make_holder(db, card_number=CARD, pin=PIN)
    unknown = await sign_in(client, card="NO-SUCH-CARD")
    wrong = await sign_in(client, pin="999999")
    assert unknown.status == wrong.status == 401
    first, second = await unknown.json(), await wrong.json()
    assert {k: v for k, v in first.items()} == {k: v for k, v in second.items()}


async def test_five_wrong_pins_lock_the_card_even_for_the_right_pin(client: TestClient, db) -> None:
    await make_holder(db, card_number=CARD, pin=PIN)
    for _ in range(4):
        assert (await sign_in(client, pin="000000")).status == 401
    # The wrong PIN that locks the card says so (docs/pages.md), not "wrong PIN" once more.
    locking = await sign_in(client, pin="000000")
    assert locking.status == 429
    assert (await locking.json())["code"] == "too_many_attempts"
    assert 14 * 60 < int(locking.headers["Retry-After"]) <= 15 * 60
    locked = await sign_in(client)
    assert locked.status == 429
    assert (await locked.json())["code"] == "too_many_attempts"
    assert int(locked.headers["Retry-After"]) > 0


async def test_the_lock_lifts_after_fifteen_minutes(client: TestClient, db) -> None:
    holder_id = await make_holder(db, card_number=CARD, pin=PIN)
    for _ in range(5):
        await sign_in(client, pin="000000")
    await db.execute(
        "UPDATE holders SET locked_until = now() - interval '1 second',"
        " failed_pin_window_started_at = now() - interval '16 minutes' WHERE id = $1",
        holder_id,
    )
    assert (await sign_in(client)).status == 201


async def test_wrong_pins_spread_over_more_than_the_window_do_not_lock(
    client: TestClient, db
) -> None:
    holder_id = await make_holder(db, card_number=CARD, pin=PIN)
    for _ in range(4):
        await sign_in(client, pin="000000")
    await db.execute(
        "UPDATE holders SET failed_pin_window_started_at = now() - interval '16 minutes'"
        " WHERE id = $1",
        holder_id,
    )
    assert (await sign_in(client, pin="000000")).status == 401  # a new window: 1 of 5
    assert (await sign_in(client)).status == 201


async def test_lockout_is_counted_in_the_database_across_processes(
    client: TestClient, aiohttp_client, settings, database_url: str, db: asyncpg.Connection
) -> None:
    await make_holder(db, card_number=CARD, pin=PIN)
    other = await aiohttp_client(create_app(settings, database_url))  # its own pool
    answers = await asyncio.gather(
        *(sign_in(app_client, pin="000000") for app_client in [client, other] * 5)
    )
    assert sorted(a.status for a in answers) == [401] * 4 + [429] * 6  # the 5th locks
    assert (await sign_in(other)).status == 429
    assert (await sign_in(client)).status == 429
    count = await db.fetchval("SELECT failed_pin_count FROM holders WHERE card_number = $1", CARD)
    assert count == 5  # every guess was judged one by one: none slipped past the lock


async def test_the_lockout_does_not_tell_a_real_card_from_an_unknown_one(
    client: TestClient, aiohttp_client, settings, database_url: str, db: asyncpg.Connection
) -> None:
    """Five guesses at a card number nobody has lock it like a real card (across
    processes too): were it not so, the sixth answer would tell who holds a card."""
    await make_holder(db, card_number=CARD, pin=PIN)
    other = await aiohttp_client(create_app(settings, database_url))
    answers = {}
    for card in (CARD, "NO-SUCH-CARD"):
        guesses = await asyncio.gather(
            *(sign_in(app_client, card=card, pin="000000") for app_client in [client, other] * 3)
        )
        answers[card] = sorted(guess.status for guess in guesses)
        locked = await sign_in(client, card=card)
        answers[card].append((locked.status, locked.headers.get("Retry-After") is not None))
        answers[card].append({k: v for k, v in (await locked.json()).items()})
    assert answers[CARD] == answers["NO-SUCH-CARD"]
    assert answers[CARD][:6] == [401] * 4 + [429] * 2
    assert answers[CARD][6] == (429, True)


async def test_guesses_at_unknown_cards_are_forgotten_when_they_no_longer_count(
    client: TestClient, db: asyncpg.Connection
) -> None:
    from service.db.holder_sessions import forget_unknown_card_attempts

    for card in ("GONE-0001", "GONE-0002", "GONE-0003"):
        assert (await sign_in(client, card=card, pin="000000")).status == 401
    await db.execute(
        "UPDATE unknown_card_attempts SET failed_pin_window_started_at = now() - interval "
        "'16 minutes' WHERE card_number <> 'GONE-0003'"
    )
    await db.execute(
        "UPDATE unknown_card_attempts SET locked_until = now() + interval '1 minute' "
        "WHERE card_number = 'GONE-0002'"
    )
    assert await forget_unknown_card_attempts(db) == 1
    kept = await db.fetch("SELECT card_number FROM unknown_card_attempts ORDER BY 1")
    assert [row["card_number"] for row in kept] == ["GONE-0002", "GONE-0003"]


async def test_suspended_revoked_and_expired_cards_are_holder_inactive(
    client: TestClient, db
) -> None:
    await make_holder(db, card_number="SUSP-1", pin=PIN, status="suspended")
    await make_holder(db, card_number="REVK-1", pin=PIN, status="revoked")
    await make_holder(db, card_number="OLD-1", pin=PIN, valid_until="2020-01-01")
    for card in ("SUSP-1", "REVK-1", "OLD-1"):
        response = await sign_in(client, card=card)
        assert response.status == 409, card
        assert (await response.json())["code"] == "holder_inactive"


async def test_a_session_stops_working_when_the_holder_is_suspended(
    client: TestClient, admin, db
) -> None:
    holder_id = await make_holder(db, card_number=CARD, pin=PIN)
    token = (await (await sign_in(client)).json())["token"]
    await client.patch(f"/v1/holders/{holder_id}", json={"status": "suspended"}, headers=admin)
    response = await client.get("/v1/me", headers=bearer(token))
    assert response.status == 409
    assert (await response.json())["code"] == "holder_inactive"


async def test_expired_or_made_up_session_is_unauthenticated(client: TestClient, db) -> None:
    holder_id = await make_holder(db, card_number=CARD, pin=PIN)
    token = (await (await sign_in(client)).json())["token"]
    await db.execute(
        "UPDATE holder_sessions SET expires_at = now() - interval '1 second' WHERE holder_id = $1",
        holder_id,
    )
    assert (await client.get("/v1/me", headers=bearer(token))).status == 401
    assert (await client.get("/v1/me", headers=bearer("yds_madeup"))).status == 401


async def test_session_token_is_stored_hashed(client: TestClient, db) -> None:
    await make_holder(db, card_number=CARD, pin=PIN)
    token = (await (await sign_in(client)).json())["token"]
    stored = await db.fetch("SELECT token_hash FROM holder_sessions")
    assert len(stored) == 1 and token.encode() not in bytes(stored[0]["token_hash"])


async def test_api_keys_cannot_use_holder_endpoints(client: TestClient, admin) -> None:
    response = await client.get("/v1/me", headers=admin)
    assert response.status == 403


async def test_signing_out_ends_that_session_only(client: TestClient, db) -> None:
    await make_holder(db, card_number=CARD, pin=PIN)
    phone = bearer((await (await sign_in(client)).json())["token"])
    tablet = bearer((await (await sign_in(client)).json())["token"])
    ended = await client.delete("/v1/me/session", headers=phone)
    assert ended.status == 204 and ended.headers["Cache-Control"] == "no-store"
    refused = await client.get("/v1/me", headers=phone)
    assert refused.status == 401 and (await refused.json())["code"] == "unauthenticated"
    assert (await client.delete("/v1/me/session", headers=phone)).status == 401
    assert (await client.get("/v1/me", headers=tablet)).status == 200
    assert await db.fetchval("SELECT count(*) FROM holder_sessions") == 1
