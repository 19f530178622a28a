"""A key revoked through one server process is refused by another within a second,
although both had it cached (service/flows/key_cache.py)."""

import asyncio
import re
import signal
import time

import aiohttp
import asyncpg
import pytest

from service.domain.auth import Role
from tests.cli.test_serve import wait_ready
from tests.concurrency.test_crash import start_server
from tests.conftest import free_port
from tests.helpers import bearer, make_key, make_partner

pytestmark = pytest.mark.slow

#: How soon every process must refuse a revoked key.
WITHIN = 1.0


async def cache_hits(session: aiohttp.ClientSession, base: str) -> float:
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    found = re.search(r'^youdai_api_key_cache_lookups_total\{outcome="hit"\} (\S+)$', text, re.M)
    assert found, "no cache hit counter in /metrics"
    return float(found.group(1))


async def test_a_key_revoked_through_one_process_is_refused_by_the_other_within_a_second(
    database_url: str, db: asyncpg.Connection, admin
) -> None:
    partner_id = await make_partner(db)
    secret = await make_key(db, Role.PARTNER, partner_id)
    key_id = await db.fetchval("SELECT id FROM api_keys WHERE role = 'partner'")
    ports = [free_port(), free_port()]
    servers = [start_server(database_url, port) for port in ports]
    try:
        for server, port in zip(servers, ports, strict=True):
            await asyncio.to_thread(wait_ready, port, server)
        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        partner = f"/v1/partners/{partner_id}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for base in (a, b, a, b):
                async with session.get(base + partner, headers=bearer(secret)) as response:
                    assert response.status == 200
            assert await cache_hits(session, b) >= 1  # B answers the key from memory

            async with session.delete(f"{a}/v1/keys/{key_id}", headers=admin) as response:
                assert response.status == 200
            revoked_at = time.monotonic()
            while True:
                async with session.get(b + partner, headers=bearer(secret)) as response:
                    if response.status == 401:
                        break
                    assert response.status == 200
                assert time.monotonic() - revoked_at <= WITHIN, "B still takes the revoked key"
                await asyncio.sleep(0.01)
            assert time.monotonic() - revoked_at <= WITHIN
            async with session.get(a + partner, headers=bearer(secret)) as response:
                assert response.status == 401
    finally:
        for server in servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                await asyncio.to_thread(server.wait, 30)
