"""Each process caches the keys it has verified (service/flows/key_cache.py): fewer reads, and
still a revoked key is refused within moments, and at once while the cache cannot hear
of changes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.app_keys import KEY_CACHE
from service.db import keys as keys_db
from service.domain.auth import Role
from service.domain.keys import hash_key
from service.flows import key_cache
from service.flows.key_cache import KeyCache
from tests.helpers import bearer, make_key, make_partner


def cache_of(client: TestClient) -> KeyCache:
    return client.server.app[KEY_CACHE]


async def until(condition: Callable[[], object], within: float, what: str) -> float:
    """Poll until `condition()` is true; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            raise AssertionError(f"not {what} within {within} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
async def partner_key(db: asyncpg.Connection) -> tuple[str, str]:
    """A partner's id and the secret of one of its partner keys."""
    partner_id = await make_partner(db)
    return partner_id, await make_key(db, Role.PARTNER, partner_id)


async def status_of(client: TestClient, partner_id: str, secret: str) -> int:
    return (await client.get(f"/v1/partners/{partner_id}", headers=bearer(secret))).status


async def test_a_key_used_many_times_is_read_from_the_database_once(
    client: TestClient, partner_key, monkeypatch
) -> None:
    partner_id, secret = partner_key
    reads = []
    real_live_key = keys_db.live_key

    async def counted_live_key(conn, key_hash):  # type: ignore[no-untyped-def]
        reads.append(key_hash)
        return await real_live_key(conn, key_hash)

    monkeypatch.setattr(keys_db, "live_key", counted_live_key)
    for _ in range(5):
        assert await status_of(client, partner_id, secret) == 200
    assert len(reads) == 1
    assert cache_of(client).lookups == {"miss": 1, "hit": 4}


async def test_unknown_keys_are_never_cached(client: TestClient, partner_key) -> None:
    partner_id, _ = partner_key
    made_up = "yd_" + "A" * 43
    for _ in range(3):
        assert await status_of(client, partner_id, made_up) == 401
    assert cache_of(client).lookups == {"miss": 3}


async def test_a_key_revoked_by_sql_is_refused_within_a_second(
    client: TestClient, partner_key, db: asyncpg.Connection
) -> None:
    partner_id, secret = partner_key
    assert await status_of(client, partner_id, secret) == 200
    assert await status_of(client, partner_id, secret) == 200
    assert cache_of(client).lookups["hit"] == 1
    # Not through the API: only PostgreSQL's announcement can tell the process.
    await db.execute("UPDATE api_keys SET revoked_at = now()")
    started = time.monotonic()
    while await status_of(client, partner_id, secret) != 401:
        assert time.monotonic() - started < 1.0, "the revoked key still works after 1 s"
        await asyncio.sleep(0.01)


async def test_only_changes_that_matter_are_announced(
    db: asyncpg.Connection, database_url: str
) -> None:
    """last_used_at moves on every verified use: it must not wake every process."""
    partner_id = await make_partner(db)
    await make_key(db, Role.PARTNER, partner_id)
    key_id = await db.fetchval("SELECT id FROM api_keys")
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(key_cache.CHANNEL, lambda *args: heard.put_nowait(args[3]))
        await db.execute("UPDATE api_keys SET last_used_at = now()")
        await db.execute("UPDATE api_keys SET label = 'till 2'")
        assert await asyncio.wait_for(heard.get(), 2) == key_id  # the label, not last_used_at
        await db.execute("UPDATE api_keys SET revoked_at = now()")
        assert await asyncio.wait_for(heard.get(), 2) == key_id
        await db.execute("DELETE FROM api_keys")
        assert await asyncio.wait_for(heard.get(), 2) == key_id
        await db.execute("TRUNCATE api_keys CASCADE")
        assert await asyncio.wait_for(heard.get(), 2) == key_cache.FORGET_ALL
        assert heard.empty()
    finally:
        await listener.close()


async def test_last_used_at_is_still_refreshed_when_the_key_is_cached(
    client: TestClient, partner_key, db: asyncpg.Connection, monkeypatch
) -> None:
    # Long enough that the second request is a hit on a loaded machine (at 0.5 s, CI once
    # took 0.85 s between them), short enough to wait out.
    monkeypatch.setattr(keys_db, "LAST_USED_RESOLUTION", timedelta(seconds=3))
    partner_id, secret = partner_key
    assert await status_of(client, partner_id, secret) == 200
    first = await db.fetchval("SELECT last_used_at FROM api_keys")
    assert first is not None
    assert await status_of(client, partner_id, secret) == 200
    assert await db.fetchval("SELECT last_used_at FROM api_keys") == first  # a hit wrote nothing
    # 3.2 s later, without waiting them: the cache's clock moves on, the use recorded goes back.
    cache = cache_of(client)
    started = cache.monotonic()
    cache.monotonic = lambda: started + 3.2
    first = await db.fetchval(
        "UPDATE api_keys SET last_used_at = last_used_at - interval '3.2 seconds' "
        "RETURNING last_used_at"
    )
    assert await status_of(client, partner_id, secret) == 200
    assert await db.fetchval("SELECT last_used_at FROM api_keys") > first
    assert cache_of(client).lookups == {"miss": 2, "hit": 1}


async def test_while_the_listener_is_lost_every_key_is_read_and_a_revoked_one_refused(
    client: TestClient, partner_key, db: asyncpg.Connection, monkeypatch
) -> None:
    partner_id, secret = partner_key
    cache = cache_of(client)
    assert cache.listening
    assert await status_of(client, partner_id, secret) == 200
    assert await status_of(client, partner_id, secret) == 200
    assert cache.lookups["hit"] == 1

    # Hold the reconnection back until the test has seen the cache bypassed.
    reconnect = asyncio.Event()
    real_connect = asyncpg.connect

    async def connect_when_allowed(*args, **kwargs):  # type: ignore[no-untyped-def]
        await reconnect.wait()
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(key_cache.asyncpg, "connect", connect_when_allowed)
    terminated = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity, "
        "LATERAL pg_terminate_backend(pid) "
        "WHERE application_name = $1 AND datname = current_database()",
        key_cache.APPLICATION_NAME,
    )
    assert terminated == 1
    await until(lambda: not cache.listening, 2.0, "noticed the lost listener")

    # Announced to nobody: the process can only know by reading.
    await db.execute("UPDATE api_keys SET revoked_at = now()")
    assert await status_of(client, partner_id, secret) == 401
    other = await make_key(db, Role.PARTNER, partner_id)
    assert await status_of(client, partner_id, other) == 200
    assert await status_of(client, partner_id, other) == 200
    assert cache.lookups["bypassed"] == 3

    reconnect.set()
    await until(lambda: cache.listening, 5.0, "listening again")
    hits = cache.lookups["hit"]
    assert await status_of(client, partner_id, other) == 200
    assert await status_of(client, partner_id, other) == 200
    assert cache.lookups["hit"] == hits + 1
    assert await status_of(client, partner_id, secret) == 401


async def test_a_key_read_before_its_revocation_was_announced_is_not_kept(
    client: TestClient, partner_key, db: asyncpg.Connection
) -> None:
    """A request's read may see the key just before the revocation commits, and finish
    after the announcement was handled: what it read must not outlive it in the cache."""
    partner_id, secret = partner_key
    cache = cache_of(client)
    key_hash = hash_key(secret)
    read_since = cache.version
    key = await keys_db.live_key(db, key_hash)
    assert key is not None
    await db.execute("UPDATE api_keys SET revoked_at = now()")
    await until(lambda: cache.version != read_since, 1.0, "announced")
    cache.remember(key_hash, key, read_since)
    assert await status_of(client, partner_id, secret) == 401
