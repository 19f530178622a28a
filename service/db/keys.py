"""SQL for API keys."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from service.db import audit
from service.db.pagination import PageRequest
from service.domain.auth import Principal, Role
from service.domain.ids import new_id
from service.domain.keys import generate_key, hash_key

#: last_used_at is refreshed at most this often, so a busy till does not write on every scan.
LAST_USED_RESOLUTION = timedelta(minutes=1)


async def create_key(
    conn: asyncpg.Connection,
    *,
    role: Role,
    partner_id: str | None,
    label: str,
    actor: Principal | None,
) -> tuple[asyncpg.Record, str]:
    """Store a new key; return its row and the secret (the only time it exists in clear)."""
    secret = generate_key()
    async with conn.transaction():
        row = await conn.fetchrow(
            """
            INSERT INTO api_keys (id, key_hash, role, partner_id, label)
            VALUES ($1, $2, $3, $4, $5)
            RETURNING id, role, partner_id, label, created_at, last_used_at, revoked_at
            """,
            new_id("key"),
            hash_key(secret),
            str(role),
            partner_id,
            label,
        )
        await audit.record(
            conn,
            actor,
            "key.issue",
            "api_key",
            row["id"],
            {"role": [None, str(role)], "partner_id": [None, partner_id], "label": [None, label]},
        )
    return row, secret


async def authenticate(conn: asyncpg.Connection, secret: str) -> asyncpg.Record | None:
    """The live (not revoked) key with this secret, or None.

    Read on every request, never cached, so a revoked key fails on its very next use.
    """
    row = await conn.fetchrow(
        """
        SELECT id, role, partner_id, label,
               last_used_at IS NULL OR last_used_at < now() - $2::interval AS stale
        FROM api_keys
        WHERE key_hash = $1 AND revoked_at IS NULL
        """,
        hash_key(secret),
        LAST_USED_RESOLUTION,
    )
    if row is not None and row["stale"]:
        await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", row["id"])
    return row


async def get_key(conn: asyncpg.Connection, key_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, role, partner_id, label, created_at, last_used_at, revoked_at "
        "FROM api_keys WHERE id = $1",
        key_id,
    )


async def list_keys(
    conn: asyncpg.Connection, partner_id: str, page: PageRequest
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT id, role, partner_id, label, created_at, last_used_at, revoked_at
        FROM api_keys
        WHERE partner_id = $1 AND ($2::text IS NULL OR id > $2)
        ORDER BY id
        LIMIT $3
        """,
        partner_id,
        page.after_id,
        page.limit + 1,
    )


async def revoke_key(
    conn: asyncpg.Connection, key_id: str, actor: Principal | None
) -> asyncpg.Record | None:
    """Revoke once; revoking again keeps (and answers) the first revocation."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """
            UPDATE api_keys SET revoked_at = now()
            WHERE id = $1 AND revoked_at IS NULL
            RETURNING id, role, partner_id, label, created_at, last_used_at, revoked_at
            """,
            key_id,
        )
        if row is None:
            return await get_key(conn, key_id)
        await audit.record(
            conn,
            actor,
            "key.revoke",
            "api_key",
            key_id,
            {"revoked_at": [None, row["revoked_at"].isoformat()]},
        )
    return row
