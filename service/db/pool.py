"""The one asyncpg pool of a process."""

from __future__ import annotations

import json

import asyncpg

from service.config import Settings

#: Seconds a query may run before the caller gets database_unavailable instead of a hang.
COMMAND_TIMEOUT = 15
#: Seconds to wait for a connection when the database does not answer.
CONNECT_TIMEOUT = 5


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection setup shared by the pool and one-off CLI connections."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(settings: Settings, dsn: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        command_timeout=COMMAND_TIMEOUT,
        timeout=CONNECT_TIMEOUT,
        init=init_connection,
        server_settings={"application_name": "youdai", "timezone": "UTC"},
    )
