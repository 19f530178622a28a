"""Signing keys live in PostgreSQL: every process signs with the same active key, rotation
takes effect at once, and retired keys stay published until their tokens have expired."""

import subprocess
import sys

import asyncpg
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.app_keys import KEYRING, POOL
from service.domain.tokens import mint, verify
from tests.conftest import cli_env


async def published_kids(client: TestClient) -> list[str]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status == 200
    return [key["kid"] for key in (await response.json())["keys"]]


async def test_jwks_publishes_an_ed25519_key_with_a_short_cache_life(
    client: TestClient, settings
) -> None:
    response = await client.get("/.well-known/jwks.json")
    document = await response.json()
    [key] = document["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert "d" not in key  # never the private part
    cache_control = response.headers["Cache-Control"]
    max_age = int(cache_control.split("max-age=")[1])
    assert 0 < max_age < settings.token_ttl


async def test_two_processes_sign_with_the_same_key_and_publish_the_same_set(
    aiohttp_client, client: TestClient, settings, database_url: str, db: asyncpg.Connection
) -> None:
    other = await aiohttp_client(create_app(settings, database_url))
    assert await published_kids(client) == await published_kids(other)
    first = await client.app[KEYRING].signing_key(db)
    second = await other.app[KEYRING].signing_key(db)
    assert first.kid == second.kid


async def test_rotation_takes_effect_at_once_and_old_tokens_still_verify(
    client: TestClient, settings, db: asyncpg.Connection
) -> None:
    keyring = client.app[KEYRING]
    old_key = await keyring.signing_key(db)
    old_token, _ = mint(
        old_key,
        voucher_id="vch_1",
        partner_id="ptn_1",
        offer_id="ofr_1",
        issuer=settings.issuer,
        ttl_seconds=settings.token_ttl,
    )
    retired, new_key = await keyring.rotate(db)
    assert retired == old_key.kid
    assert (await keyring.signing_key(db)).kid == new_key.kid  # no restart, no waiting
    assert await published_kids(client) == [new_key.kid, old_key.kid]
    keys = await keyring.verifying_keys(client.app[POOL], old_key.kid)
    claims = verify(old_token, keys=keys, issuer=settings.issuer, audience="ptn_1")
    assert claims.voucher_id == "vch_1"


async def test_a_retired_key_leaves_the_set_once_its_tokens_have_expired(
    client: TestClient, db: asyncpg.Connection
) -> None:
    old = (await client.app[KEYRING].signing_key(db)).kid
    await client.app[KEYRING].rotate(db)
    await db.execute(
        "UPDATE signing_keys SET retired_at = now() - interval '1 day' WHERE kid = $1", old
    )
    assert old not in await published_kids(client)


async def test_rotate_signing_key_command(database_url: str, client: TestClient, db) -> None:
    before = await published_kids(client)
    result = subprocess.run(
        [sys.executable, "-m", "service", "rotate-signing-key"],
        env=cli_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    after = await published_kids(client)
    assert after[1:] == before and after[0] in result.stdout
