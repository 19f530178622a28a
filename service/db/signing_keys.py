"""SQL for the voucher signing keys."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from service.domain.tokens import SigningKey, generate_signing_key, private_pem, public_pem


async def active_kid(conn: asyncpg.Connection) -> str | None:
    return await conn.fetchval("SELECT kid FROM signing_keys WHERE retired_at IS NULL")


async def load(conn: asyncpg.Connection, kid: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT kid, private_pem, public_pem, retired_at FROM signing_keys WHERE kid = $1", kid
    )


async def published(conn: asyncpg.Connection, keep_retired_for: timedelta) -> list[asyncpg.Record]:
    """The active key and every retired key whose tokens may not all have expired yet."""
    return await conn.fetch(
        """
        SELECT kid, public_pem, retired_at FROM signing_keys
        WHERE retired_at IS NULL OR retired_at > now() - $1::interval
        ORDER BY created_at DESC
        """,
        keep_retired_for,
    )


async def ensure_active(conn: asyncpg.Connection) -> str:
    """The active kid, creating the first key if there is none (safe from many processes)."""
    kid = await active_kid(conn)
    if kid is not None:
        return kid
    key = generate_signing_key()
    # The partial unique index lets only one concurrent first insert win.
    await conn.execute(
        """
        INSERT INTO signing_keys (kid, private_pem, public_pem) VALUES ($1, $2, $3)
        ON CONFLICT DO NOTHING
        """,
        key.kid,
        private_pem(key),
        public_pem(key),
    )
    kid = await active_kid(conn)
    assert kid is not None
    return kid


async def rotate(conn: asyncpg.Connection) -> tuple[str | None, SigningKey]:
    """Retire the active key and activate a new one, in one transaction."""
    key = generate_signing_key()
    async with conn.transaction():
        retired = await conn.fetchval(
            "UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL RETURNING kid"
        )
        await conn.execute(
            "INSERT INTO signing_keys (kid, private_pem, public_pem) VALUES ($1, $2, $3)",
            key.kid,
            private_pem(key),
            public_pem(key),
        )
    return retired, key
