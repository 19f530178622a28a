"""A till that gives up mid-request never leaves half a redemption behind (rule 3)."""

import asyncio
import uuid

import aiohttp
import asyncpg
import pytest

from service.app import create_app
from tests.concurrency.conftest import assert_counters_match_ledger
from tests.helpers import Till


async def test_client_disconnect_mid_redeem_leaves_all_or_nothing_and_retry_replays(
    aiohttp_client, database_url: str, settings, db: asyncpg.Connection
) -> None:
    # Cancel handlers when their client goes away, the harshest setting aiohttp has.
    client = await aiohttp_client(
        create_app(settings, database_url), server_kwargs={"handler_cancellation": True}
    )
    till = await Till(db, settings).open()
    headers = {**till.scanner, "Idempotency-Key": uuid.uuid4().hex}
    body = {"token": till.token, "purchase_amount": 5000}

    blocker = await asyncpg.connect(database_url)
    blocking = blocker.transaction()
    await blocking.start()
    # Hold the offer row: the redeem gets inside its transaction, then waits here.
    await blocker.execute("SELECT 1 FROM offers WHERE id = $1 FOR UPDATE", till.offer_id)
    with pytest.raises(asyncio.TimeoutError):
        await client.post(
            "/v1/redemptions",
            json=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=0.5),
        )
    await blocking.rollback()
    await blocker.close()

    # The shielded redemption finishes on its own; then a retry replays its answer.
    for _ in range(50):
        if await db.fetchval("SELECT count(*) FROM redemptions") == 1:
            break
        await asyncio.sleep(0.1)
    retry = await client.post("/v1/redemptions", json=body, headers=headers)
    assert retry.status == 201
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert (await retry.json())["id"] == await db.fetchval("SELECT id FROM redemptions")
    assert await db.fetchval("SELECT count(*) FROM redemptions") == 1
    await assert_counters_match_ledger(db)
