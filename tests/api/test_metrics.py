"""GET /metrics: Prometheus text that counts requests, redemptions, discounts, token
failures and the pool, with no holder data in it, summed over every worker."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.api.docs import build_openapi
from tests.cli.test_serve import get, wait_ready
from tests.conftest import cli_env, free_port
from tests.helpers import Till


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, frozenset of label pairs): value} of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def total(found: dict, name: str, **labels: str) -> float:
    """Sum of a sample over every label set that includes `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, pairs), v in found.items() if n == name and wanted <= pairs)


async def scrape(client: TestClient) -> dict:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return samples(await response.text())


def scrape_url(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return samples(answer.read().decode())


async def redeem(client: TestClient, till: Till, token: str, key: str | None = None):
    return await client.post(
        "/v1/redemptions",
        json={"token": token, "purchase_amount": 10000},
        headers={**till.scanner, "Idempotency-Key": key or uuid.uuid4().hex},
    )


@pytest.fixture
async def till(db: asyncpg.Connection, settings) -> Till:
    return await Till(db, settings).open(offer={"kind": "percent_off", "percent_bp": 1500})


async def test_redemption_refusal_replay_and_reversal_move_their_counters(
    client: TestClient, till: Till
) -> None:
    before = await scrape(client)

    first = await redeem(client, till, till.token, key="till-1-receipt-1")
    assert first.status == 201, await first.text()
    granted = (await first.json())["discount_amount"]
    assert granted == 1500
    replay = await redeem(client, till, till.token, key="till-1-receipt-1")
    assert replay.headers.get("Idempotent-Replayed") == "true"
    used_up = await redeem(client, till, till.token)
    assert (await used_up.json())["code"] == "voucher_used_up"
    forged = await redeem(client, till, till.token[:-4] + "AAAA")
    assert (await forged.json())["code"] == "token_invalid"
    preview = await client.post(
        "/v1/redemptions/preview",
        json={"token": "not-a-token", "purchase_amount": 100},
        headers=till.scanner,
    )
    assert (await preview.json())["code"] == "token_invalid"
    redemption_id = (await first.json())["id"]
    reversal = await client.post(
        f"/v1/redemptions/{redemption_id}/reversal", json={"reason": "refund"}, headers=till.scanner
    )
    assert reversal.status == 201, await reversal.text()
    again = await client.post(
        f"/v1/redemptions/{redemption_id}/reversal", json={"reason": "refund"}, headers=till.scanner
    )
    assert (await again.json())["code"] == "already_reversed"

    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("youdai_redemptions_total", outcome="completed") == 1
    assert moved("youdai_redemptions_total", outcome="replayed") == 1
    assert moved("youdai_redemptions_total", outcome="voucher_used_up") == 1
    assert moved("youdai_redemptions_total", outcome="token_invalid") == 1
    assert moved("youdai_discount_granted_fen_total") == granted
    assert moved("youdai_token_verify_failures_total", reason="token_invalid") == 2
    assert moved("youdai_token_verify_failures_total", reason="token_expired") == 0
    assert moved("youdai_reversals_total", outcome="completed") == 1
    assert moved("youdai_reversals_total", outcome="already_reversed") == 1
    assert moved("youdai_discount_reversed_fen_total") == granted


async def test_requests_are_counted_by_route_template_and_status(
    client: TestClient, admin: dict[str, str]
) -> None:
    before = await scrape(client)
    missing = "ptn_does_not_exist_12345"
    assert (await client.get(f"/v1/partners/{missing}", headers=admin)).status == 404
    assert (await client.get("/no/such/page")).status == 404
    assert (await client.get("/healthz")).status == 200
    after = await scrape(client)

    def moved(**labels: str) -> float:
        return total(after, "youdai_http_requests_total", **labels) - total(
            before, "youdai_http_requests_total", **labels
        )

    assert moved(method="GET", route="/v1/partners/{partner_id}", status="404") == 1
    assert moved(method="GET", route="unmatched", status="404") == 1
    assert moved(method="GET", route="/healthz", status="200") == 1
    histogram = "youdai_http_request_duration_seconds_count"
    assert (
        total(after, histogram, route="/healthz", status="200")
        - total(before, histogram, route="/healthz", status="200")
        == 1
    )
    routes = {dict(pairs).get("route") for (name, pairs) in after if name.startswith("youdai_http")}
    assert routes, "no request series at all"
    assert all(route == "unmatched" or route.startswith("/") for route in routes)
    assert not any(missing in route or route == "/no/such/page" for route in routes)


async def test_exposition_holds_no_card_numbers_holder_ids_or_names(
    client: TestClient, db: asyncpg.Connection, settings
) -> None:
    till = await Till(db, settings).open(holder={"card_number": "VET-2024-778899"})
    holder = await db.fetchrow("SELECT * FROM holders WHERE id = $1", till.holder_id)
    assert (await redeem(client, till, till.token)).status == 201
    await client.post(  # a holder signing in with a wrong PIN
        "/v1/holder-sessions", json={"card_number": holder["card_number"], "pin": "000000"}
    )
    await client.get(f"/v1/holders/{till.holder_id}")
    text = await (await client.get("/metrics")).text()
    for secret in (
        holder["card_number"],
        holder["id"],
        holder["display_name"],
        till.voucher_id,
        till.token,
    ):
        assert secret not in text


async def test_pool_gauges_are_read_at_scrape_time(client: TestClient, settings) -> None:
    found = await scrape(client)
    assert value(found, "youdai_db_pool_max_connections") == settings.db_pool_max
    size = value(found, "youdai_db_pool_connections")
    assert 1 <= size <= settings.db_pool_max
    assert 0 <= value(found, "youdai_db_pool_connections_in_use") <= size


async def test_metrics_is_documented_as_plain_text(client: TestClient) -> None:
    document = build_openapi(client.app)
    answer = document["paths"]["/metrics"]["get"]["responses"]["200"]
    assert "text/plain" in answer["content"]


@pytest.mark.slow
def test_metrics_add_up_every_worker_of_serve_workers(database_url: str, tmp_path) -> None:
    port = free_port()
    temp = tmp_path / "tmp"  # where the parent makes the workers' metrics folder
    temp.mkdir()
    env = cli_env(DATABASE_URL=database_url, YOUDAI_DATA_DIR=str(tmp_path), TMPDIR=str(temp))
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(port, process)
        assert [p for p in temp.iterdir() if p.name.startswith("youdai-metrics-")]
        # Both workers serve once the pools of both count (one connection each at least).
        deadline = time.monotonic() + 60
        while scrape_url(port).get(("youdai_db_pool_connections", frozenset()), 0) < 2:
            assert time.monotonic() < deadline, "the second worker never started"
            time.sleep(0.2)
        for _ in range(20):
            # A fresh connection each: the kernel spreads them over both workers.
            assert get(port, "/healthz")[0] == 200
        for _ in range(6):  # whichever worker answers, it tells the total
            found = scrape_url(port)
            assert total(found, "youdai_http_requests_total", route="/healthz") >= 20
    finally:
        process.terminate()
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert not [p for p in temp.iterdir() if p.name.startswith("youdai-metrics-")]
