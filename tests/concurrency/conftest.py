"""Two apps with pools of their own on one database: what two server processes are."""

from __future__ import annotations

import itertools
import uuid

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.db.reconcile import mismatches


@pytest.fixture
async def servers(database_url: str, settings, aiohttp_client) -> list[TestClient]:
    return [await aiohttp_client(create_app(settings, database_url)) for _ in range(2)]


async def burst(servers, requests):
    """Send (headers, body) pairs alternately to each server, all at once."""
    import asyncio

    targets = itertools.cycle(servers)
    sent = [
        next(targets).post("/v1/redemptions", json=body, headers=headers)
        for headers, body in requests
    ]
    responses = await asyncio.gather(*sent)
    return [(r.status, await r.json(), r.headers) for r in responses]


def fresh_key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def assert_counters_match_ledger(db: asyncpg.Connection) -> None:
    assert await mismatches(db) == {}
