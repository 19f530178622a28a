import asyncpg
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.app_keys import STOPPING
from tests.conftest import free_port


async def test_healthz_answers_ok(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_is_200_when_migrated(client: TestClient) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["status"] == "ready"


async def test_readyz_is_503_while_a_migration_is_pending(
    aiohttp_client, settings, own_database_url: str
) -> None:
    conn = await asyncpg.connect(own_database_url)
    await conn.execute("DELETE FROM schema_migrations WHERE version = 1")
    await conn.close()
    client = await aiohttp_client(create_app(settings, own_database_url))
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.content_type == "application/problem+json"
    assert (await response.json())["code"] == "not_ready"


async def test_readyz_is_503_while_the_database_is_unreachable(aiohttp_client, settings) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/youdai"
    app = create_app(settings.with_overrides(db_pool_min=0), nowhere)
    client = await aiohttp_client(app)
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["code"] == "database_unavailable"
    assert (await client.get("/healthz")).status == 200


async def test_a_process_shutting_down_is_not_ready_but_still_live(client: TestClient) -> None:
    client.app[STOPPING].set()  # what SIGTERM does (service/server.py)
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["code"] == "not_ready"
    assert ready.headers.get("Connection") == "close"
    assert (await client.get("/healthz")).status == 200
