"""Each process's view of the voucher signing keys.

PostgreSQL holds the keys (service/db/signing_keys.py), the private parts sealed with
the process's Sealer (YOUDAI_SECRET_KEY); this cache only saves opening and parsing
them on every request. Minting asks the database which key is active each
time (one indexed read), so `youdai rotate-signing-key` takes effect at once in
every process. Verifying uses the cached public keys and reloads them when a token
names a key this process has not seen yet, at most once per RELOAD_INTERVAL so a
flood of made-up key ids cannot hammer the database.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.db import signing_keys as signing_db
from service.domain.tokens import (
    LEEWAY_SECONDS,
    SigningKey,
    generate_signing_key,
    private_pem,
    public_jwk,
    public_pem,
    signing_key_from_pem,
    verify_key_from_pem,
)
from service.flows.database import Database, connection
from service.sealing import Sealer, SealError

RELOAD_INTERVAL = 1.0
#: Extra time a retired key stays published beyond the longest token life, for clock skew.
PUBLISH_MARGIN = timedelta(seconds=60)


class SecretKeyMismatch(Exception):
    """The stored signing keys do not open with this YOUDAI_SECRET_KEY."""


def _context(kid: str) -> str:
    return f"signing-key:{kid}"


def seal_key(sealer: Sealer, key: SigningKey) -> bytes:
    return sealer.seal(private_pem(key).encode("ascii"), context=_context(key.kid))


def open_key(sealer: Sealer, stored: signing_db.StoredKey) -> SigningKey:
    """The usable key of a stored row; SealError when it does not open."""
    if stored.private_sealed is None:
        raise SealError(f"signing key {stored.kid} is not sealed yet")
    pem = sealer.open(stored.private_sealed, context=_context(stored.kid))
    return signing_key_from_pem(pem.decode("ascii"), stored.kid)


async def seal_plain_keys(conn: asyncpg.Connection, sealer: Sealer) -> int:
    """Seal every key still stored as plain PEM (rows from before migration 0009), and
    check that every sealed key opens. Runs after each migrate; raises
    SecretKeyMismatch when the secret key is not the one the keys were sealed with."""
    sealed = 0
    async with conn.transaction():
        for stored in await signing_db.all_keys(conn, for_update=True):
            if stored.private_pem is not None:
                key = signing_key_from_pem(stored.private_pem, stored.kid)
                await signing_db.store_sealed(conn, stored.kid, seal_key(sealer, key))
                sealed += 1
            else:
                try:
                    open_key(sealer, stored)
                except SealError:
                    raise SecretKeyMismatch(
                        "the signing keys in the database do not open with this "
                        "YOUDAI_SECRET_KEY (or the data folder's secret.key): start with the "
                        "key they were sealed with, or see `youdai rotate-secret-key`"
                    ) from None
    return sealed


class Keyring:
    def __init__(self, token_ttl: int, sealer: Sealer) -> None:
        self.sealer = sealer
        self.keep_retired_for = timedelta(seconds=token_ttl + LEEWAY_SECONDS) + PUBLISH_MARGIN
        self._signing: dict[str, SigningKey] = {}
        self._public: dict[str, Ed25519PublicKey] = {}
        self._published: list[SigningKey] = []
        self._loaded_at = float("-inf")

    async def signing_key(self, conn: asyncpg.Connection) -> SigningKey:
        """The key every process signs with right now."""
        kid = await signing_db.active_kid(conn) or await self.ensure_active(conn)
        key = self._signing.get(kid)
        if key is None:
            stored = await signing_db.load(conn, kid)
            assert stored is not None
            key = open_key(self.sealer, stored)
            self._signing[kid] = key
        return key

    async def ensure_active(self, conn: asyncpg.Connection) -> str:
        """The active kid, creating the first key if there is none (safe from many processes)."""
        kid = await signing_db.active_kid(conn)
        if kid is not None:
            return kid
        key = generate_signing_key()
        return await signing_db.insert_first(
            conn, key.kid, seal_key(self.sealer, key), public_pem(key)
        )

    async def rotate(self, conn: asyncpg.Connection) -> tuple[str | None, SigningKey]:
        """Retire the active key and activate a new one; (retired kid, new key)."""
        key = generate_signing_key()
        retired = await signing_db.rotate(
            conn, key.kid, seal_key(self.sealer, key), public_pem(key)
        )
        return retired, key

    async def verifying_keys(
        self, pool: asyncpg.Pool, kid: str | None
    ) -> Mapping[str, Ed25519PublicKey]:
        """Public keys by kid, reloaded if `kid` is new to this process."""
        unseen = kid is not None and kid not in self._public
        if unseen and time.monotonic() - self._loaded_at >= RELOAD_INTERVAL:
            async with pool.acquire() as conn:
                await self.reload(conn)
        return self._public

    async def verifying_keys_at(
        self, pool: asyncpg.Pool, at: datetime
    ) -> Mapping[str, Ed25519PublicKey]:
        """Public keys by kid that verified tokens at `at`: for an offline redemption sent
        hours later, whose token may be signed by a key retired since (docs/rules.md).
        A key stays usable for that as long as it is stored; only its publication in the
        JWKS ends soon after it is retired."""
        async with pool.acquire() as conn:
            rows = await signing_db.verifying_at(conn, at - self.keep_retired_for)
        return {
            row["kid"]: verify_key_from_pem(row["public_pem"], row["kid"]).public_key
            for row in rows
        }

    async def reload(self, conn: asyncpg.Connection) -> list[SigningKey]:
        rows = await signing_db.published(conn, self.keep_retired_for)
        self._published = [verify_key_from_pem(row["public_pem"], row["kid"]) for row in rows]
        self._public = {key.kid: key.public_key for key in self._published}
        self._loaded_at = time.monotonic()
        return self._published

    async def jwks(self, db: Database) -> dict[str, list[dict[str, str]]]:
        """The published set, read fresh so every process answers the same."""
        async with connection(db) as conn:
            await self.ensure_active(conn)
            return {"keys": [public_jwk(key) for key in await self.reload(conn)]}
