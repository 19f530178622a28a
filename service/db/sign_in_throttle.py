"""SQL for failed sign-ins per client address (table sign_in_address_failures)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import asyncpg


async def window_start_if_over(
    conn: asyncpg.Connection, address: str, now: datetime, window: timedelta, limit: int
) -> datetime | None:
    """When the window of `address` started, if it holds `limit` failures or more."""
    # docs/api.md: `limit` failures within the window refuse the address until it ends.
    return cast(
        datetime | None,
        await conn.fetchval(
            """
        SELECT window_started_at FROM sign_in_address_failures
        WHERE address = $1 AND failures >= $4 AND window_started_at > $2::timestamptz - $3::interval
        """,
            address,
            now,
            window,
            limit,
        ),
    )


async def record_failure(
    conn: asyncpg.Connection, address: str, now: datetime, window: timedelta
) -> int:
    """Count one failure; a window that is over starts again at `now`. The new count."""
    # docs/api.md: one row per address, counted atomically from every process.
    return cast(
        int,
        await conn.fetchval(
            """
        INSERT INTO sign_in_address_failures AS f (address, failures, window_started_at)
        VALUES ($1, 1, $2)
        ON CONFLICT (address) DO UPDATE SET
            failures = CASE WHEN f.window_started_at > $2::timestamptz - $3::interval
                            THEN f.failures + 1 ELSE 1 END,
            window_started_at = CASE WHEN f.window_started_at > $2::timestamptz - $3::interval
                                     THEN f.window_started_at ELSE $2 END
        RETURNING failures
        """,
            address,
            now,
            window,
        ),
    )


async def forget_old_failures(conn: asyncpg.Connection, window: timedelta) -> int:
    """Housekeeping: windows that are over count for nothing."""
    result = await conn.execute(
        "DELETE FROM sign_in_address_failures WHERE window_started_at < now() - $1::interval",
        window,
    )
    return int(result.split()[-1])
