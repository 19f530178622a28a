"""A client that gives up mid-request: a till never leaves half a redemption behind
(rule 3), and no hang-up is ever taken for a database outage (docs/running.md)."""

import asyncio
import json
import signal
import socket
import struct
import time
import uuid

import aiohttp
import asyncpg
import pytest

from service.app import create_app
from service.domain.auth import Role
from tests.cli.test_shutdown import Served
from tests.concurrency.conftest import assert_counters_match_ledger
from tests.conftest import cli_env, free_port
from tests.helpers import Till, make_holder, make_key


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


# --- A client that hangs up is the client's doing (docs/running.md) ---------------------------


def _hang_up(port: int, request: bytes, *, reset: bool) -> None:
    """Send `request` on a fresh connection and close it without reading the answer:
    with a FIN, or with a TCP reset (SO_LINGER 0) when `reset`."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        time.sleep(0.05)  # the request reaches its handler first
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _requests_with_status(metrics_text: str, status: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("youdai_http_requests_total{") and f'status="{status}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _metrics(port: int) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as answer,
    ):
        return await answer.text()


@pytest.mark.slow
async def test_clients_hanging_up_mid_request_are_not_a_database_outage(
    database_url: str, db: asyncpg.Connection, tmp_path
) -> None:
    holder_id = await make_holder(db, card_number="HANGUP-0001", pin="204816")
    assert holder_id
    admin = await make_key(db, Role.ADMIN)
    port = free_port()
    served = Served(
        cli_env(DATABASE_URL=database_url, YOUDAI_DATA_DIR=str(tmp_path / "data")), port, 1
    )
    try:
        served.wait_serving(1)
        before = _requests_with_status(await _metrics(port), "503")

        sign_in = json.dumps({"card_number": "HANGUP-0001", "pin": "204816"}).encode()
        whole = (
            b"POST /v1/holder-sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(sign_in), sign_in)
        )
        # Headers and half the body: the handler is reading it when the client leaves.
        half = whole[: len(whole) - len(sign_in) // 2]
        report = (
            b"GET /v1/reports/discounts?group_by=partner,offer,category,month HTTP/1.1\r\n"
            b"Host: x\r\nAuthorization: Bearer " + admin.encode() + b"\r\n\r\n"
        )
        hang_ups = [
            (request, reset)
            for request in (whole, half, report)
            for reset in (False, True)
            for _ in range(5)
        ]
        await asyncio.gather(
            *(
                asyncio.to_thread(_hang_up, port, request, reset=reset)
                for request, reset in hang_ups
            )
        )
        await asyncio.sleep(2)  # sign-ins verifying their PIN finish (argon2id)

        metrics_after = await _metrics(port)
        assert _requests_with_status(metrics_after, "503") == before, "hang-ups counted as 503"
        assert _requests_with_status(metrics_after, "500") == 0, "hang-ups counted as 500"
        assert served.messages("database unavailable") == []
        assert served.messages("unexpected error") == []
        # And the service still answers.
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{port}/v1/holder-sessions",
                data=sign_in,
                headers={"Content-Type": "application/json"},
            ) as answer,
        ):
            assert answer.status == 201
    finally:
        served.process.send_signal(signal.SIGTERM)
        served.wait_exit()
        served.kill()
