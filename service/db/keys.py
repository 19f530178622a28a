"""SQL for API keys (stored by the SHA-256 hash of their secret, never the secret)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from service.domain.pagination import PageRequest

#: last_used_at is refreshed at most this often, so a busy till does not write on every scan.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_COLUMNS = "id, role, partner_id, label, created_at, last_used_at, revoked_at"


@dataclass(frozen=True, slots=True)
class Key:
    id: str
    role: str
    partner_id: str | None
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class LiveKey:
    """What a request's caller is, read from a live key."""

    id: str
    role: str
    partner_id: str | None
    label: str
    #: How long ago its use was last recorded in last_used_at (zero when this read did).
    use_recorded_ago: timedelta


def _key(row: asyncpg.Record | None) -> Key | None:
    return None if row is None else Key(**row)


async def insert_key(
    conn: asyncpg.Connection,
    key_id: str,
    key_hash: bytes,
    role: str,
    partner_id: str | None,
    label: str,
) -> Key:
    row = await conn.fetchrow(
        f"""
        INSERT INTO api_keys (id, key_hash, role, partner_id, label)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING {_COLUMNS}
        """,
        key_id,
        key_hash,
        role,
        partner_id,
        label,
    )
    return Key(**row)


async def live_key(conn: asyncpg.Connection, key_hash: bytes) -> LiveKey | None:
    """The live (not revoked) key with this hash, or None; refreshes its last_used_at
    when older than LAST_USED_RESOLUTION."""
    row = await conn.fetchrow(
        """
        SELECT id, role, partner_id, label, now() - last_used_at AS use_recorded_ago
        FROM api_keys
        WHERE key_hash = $1 AND revoked_at IS NULL
        """,
        key_hash,
    )
    if row is None:
        return None
    use_recorded_ago = row["use_recorded_ago"]
    if use_recorded_ago is None or use_recorded_ago > LAST_USED_RESOLUTION:
        await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", row["id"])
        use_recorded_ago = timedelta(0)
    return LiveKey(row["id"], row["role"], row["partner_id"], row["label"], use_recorded_ago)


async def get_key(conn: asyncpg.Connection, key_id: str) -> Key | None:
    return _key(await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1", key_id))


async def list_keys(conn: asyncpg.Connection, partner_id: str, page: PageRequest) -> list[Key]:
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS}
        FROM api_keys
        WHERE partner_id = $1 AND ($2::text IS NULL OR id > $2)
        ORDER BY id
        LIMIT $3
        """,
        partner_id,
        page.after_id,
        page.limit + 1,
    )
    return [Key(**row) for row in rows]


async def set_revoked(conn: asyncpg.Connection, key_id: str) -> Key | None:
    """Revoke a live key; None when it is already revoked (or does not exist)."""
    return _key(
        await conn.fetchrow(
            f"""
            UPDATE api_keys SET revoked_at = now()
            WHERE id = $1 AND revoked_at IS NULL
            RETURNING {_COLUMNS}
            """,
            key_id,
        )
    )
