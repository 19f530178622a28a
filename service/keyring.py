"""Each process's view of the voucher signing keys.

PostgreSQL holds the keys (service/db/signing_keys.py); this cache only saves
parsing PEM on every request. Minting asks the database which key is active each
time (one indexed read), so `youdai rotate-signing-key` takes effect at once in
every process. Verifying uses the cached public keys and reloads them when a token
names a key this process has not seen yet, at most once per RELOAD_INTERVAL so a
flood of made-up key ids cannot hammer the database.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.db import signing_keys as signing_db
from service.domain.tokens import (
    LEEWAY_SECONDS,
    SigningKey,
    public_jwk,
    signing_key_from_pem,
    verify_key_from_pem,
)

RELOAD_INTERVAL = 1.0
#: Extra time a retired key stays published beyond the longest token life, for clock skew.
PUBLISH_MARGIN = timedelta(seconds=60)


class Keyring:
    def __init__(self, token_ttl: int) -> None:
        self.keep_retired_for = timedelta(seconds=token_ttl + LEEWAY_SECONDS) + PUBLISH_MARGIN
        self._signing: dict[str, SigningKey] = {}
        self._public: dict[str, Ed25519PublicKey] = {}
        self._published: list[SigningKey] = []
        self._loaded_at = float("-inf")

    async def signing_key(self, conn: asyncpg.Connection) -> SigningKey:
        """The key every process signs with right now."""
        kid = await signing_db.active_kid(conn) or await signing_db.ensure_active(conn)
        key = self._signing.get(kid)
        if key is None:
            row = await signing_db.load(conn, kid)
            key = signing_key_from_pem(row["private_pem"], kid)
            self._signing[kid] = key
        return key

    async def verifying_keys(
        self, pool: asyncpg.Pool, kid: str | None
    ) -> Mapping[str, Ed25519PublicKey]:
        """Public keys by kid, reloaded if `kid` is new to this process."""
        unseen = kid is not None and kid not in self._public
        if unseen and time.monotonic() - self._loaded_at >= RELOAD_INTERVAL:
            async with pool.acquire() as conn:
                await self.reload(conn)
        return self._public

    async def reload(self, conn: asyncpg.Connection) -> list[SigningKey]:
        rows = await signing_db.published(conn, self.keep_retired_for)
        self._published = [verify_key_from_pem(row["public_pem"], row["kid"]) for row in rows]
        self._public = {key.kid: key.public_key for key in self._published}
        self._loaded_at = time.monotonic()
        return self._published

    async def jwks(self, conn: asyncpg.Connection) -> dict[str, list[dict[str, str]]]:
        """The published set, read fresh so every process answers the same."""
        await signing_db.ensure_active(conn)
        return {"keys": [public_jwk(key) for key in await self.reload(conn)]}
