"""Readiness: the database answers and its schema is the one this code expects; and which
errors mean it does not answer."""

from __future__ import annotations

import asyncio

import asyncpg

from service.db import connection as connection_db
from service.db.migrate import available_migrations, pending_migrations
from service.domain.errors import ApiError
from service.domain.language import Said

#: The errors by which any flow reports PostgreSQL unreachable, for the error middleware
#: to answer 503 database_unavailable (handlers know no database errors of their own).
DATABASE_DOWN = connection_db.DATABASE_DOWN

#: Readiness must answer fast even when PostgreSQL hangs: probes have short timeouts.
READY_TIMEOUT = 2.0


async def readiness(pool: asyncpg.Pool, *, stopping: bool = False) -> int:
    """The number of migrations applied, or database_unavailable / not_ready, within
    READY_TIMEOUT seconds. A process `stopping` (after SIGTERM) is not ready, so load
    balancers send it nothing new while it still answers (docs/running.md)."""
    if stopping:
        raise ApiError("not_ready", "The service is shutting down")
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with pool.acquire() as conn:
                pending = await pending_migrations(conn)
    except Exception:
        raise ApiError(
            "database_unavailable", Said("PostgreSQL does not answer", "PostgreSQL 没有响应")
        ) from None
    if pending:
        raise ApiError(
            "not_ready",
            Said(
                f"{len(pending)} migration(s) pending: run `youdai migrate`",
                f"有 {len(pending)} 个迁移待执行：请运行 `youdai migrate`",
            ),
        )
    return len(available_migrations())
