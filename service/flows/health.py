"""Readiness: the database answers and its schema is the one this code expects."""

from __future__ import annotations

import asyncio

import asyncpg

from service.db.migrate import available_migrations, pending_migrations
from service.domain.errors import ApiError

#: Readiness must answer fast even when PostgreSQL hangs: probes have short timeouts.
READY_TIMEOUT = 2.0


async def readiness(pool: asyncpg.Pool) -> int:
    """The number of migrations applied, or database_unavailable / not_ready, within
    READY_TIMEOUT seconds."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with pool.acquire() as conn:
                pending = await pending_migrations(conn)
    except Exception:
        raise ApiError("database_unavailable", "PostgreSQL does not answer") from None
    if pending:
        raise ApiError("not_ready", f"{len(pending)} migration(s) pending: run `youdai migrate`")
    return len(available_migrations())
