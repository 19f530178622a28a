"""SQL for the voucher signing keys. Private keys are stored sealed (service/sealing.py):
this module moves the sealed bytes and never sees a key in clear."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import asyncpg


@dataclass(frozen=True, slots=True)
class StoredKey:
    kid: str
    public_pem: str
    private_sealed: bytes | None
    #: Only rows written before migration 0009, until seal_plain_keys seals them.
    private_pem: str | None
    retired_at: datetime | None


#: A StoredKey's columns, in its fields' order.
_KEY = "kid, public_pem, private_sealed, private_pem, retired_at"


async def active_kid(conn: asyncpg.Connection) -> str | None:
    return cast(
        str | None, await conn.fetchval("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
    )


async def load(conn: asyncpg.Connection, kid: str) -> StoredKey | None:
    row = await conn.fetchrow(f"SELECT {_KEY} FROM signing_keys WHERE kid = $1", kid)
    return None if row is None else StoredKey(**row)


async def all_keys(conn: asyncpg.Connection, *, for_update: bool = False) -> list[StoredKey]:
    """Every key, oldest first (sealing and re-sealing walk them all)."""
    rows = await conn.fetch(
        f"SELECT {_KEY} FROM signing_keys ORDER BY created_at"
        + (" FOR UPDATE" if for_update else "")
    )
    return [StoredKey(**row) for row in rows]


async def store_sealed(conn: asyncpg.Connection, kid: str, sealed: bytes) -> None:
    """Replace a key's private part by its sealed form; no plain PEM remains."""
    await conn.execute(
        "UPDATE signing_keys SET private_sealed = $2, private_pem = NULL WHERE kid = $1",
        kid,
        sealed,
    )


async def published(conn: asyncpg.Connection, keep_retired_for: timedelta) -> list[asyncpg.Record]:
    """The active key and every retired key whose tokens may not all have expired yet."""
    return cast(
        list[asyncpg.Record],
        await conn.fetch(
            """
        SELECT kid, public_pem, retired_at FROM signing_keys
        WHERE retired_at IS NULL OR retired_at > now() - $1::interval
        ORDER BY created_at DESC
        """,
            keep_retired_for,
        ),
    )


async def verifying_at(conn: asyncpg.Connection, retired_after: datetime) -> list[asyncpg.Record]:
    """Every key that was not yet retired at `retired_after`: those whose tokens an offline
    till may have been shown then (the caller adds a token's life to the moment)."""
    return cast(
        list[asyncpg.Record],
        await conn.fetch(
            """
        SELECT kid, public_pem FROM signing_keys
        WHERE retired_at IS NULL OR retired_at > $1
        ORDER BY created_at DESC
        """,
            retired_after,
        ),
    )


async def insert_first(conn: asyncpg.Connection, kid: str, sealed: bytes, public: str) -> str:
    """Make this key the active one unless another process got there first; the kid
    that is active afterwards."""
    # Rule: one active key. The partial unique index lets only one first insert win.
    await conn.execute(
        """
        INSERT INTO signing_keys (kid, private_sealed, public_pem) VALUES ($1, $2, $3)
        ON CONFLICT DO NOTHING
        """,
        kid,
        sealed,
        public,
    )
    active = await active_kid(conn)
    assert active is not None
    return active


async def rotate(conn: asyncpg.Connection, kid: str, sealed: bytes, public: str) -> str | None:
    """Retire the active key and activate this one, in one transaction; the retired kid."""
    async with conn.transaction():
        retired: str | None = await conn.fetchval(
            "UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL RETURNING kid"
        )
        await conn.execute(
            "INSERT INTO signing_keys (kid, private_sealed, public_pem) VALUES ($1, $2, $3)",
            kid,
            sealed,
            public,
        )
    return retired


async def remove(conn: asyncpg.Connection, kid: str) -> None:
    """Forget a key whose private part can no longer be opened (a lost key-encryption
    key): its public key leaves the published set at once."""
    await conn.execute("DELETE FROM signing_keys WHERE kid = $1", kid)
