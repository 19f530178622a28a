"""Sign-in throttling per client address, for every kind of sign-in (holder card + PIN,
staff email + password): failures from one address count together (docs/api.md).

A sign-in flow calls `refuse_if_address_throttled` before it checks any credential and
`record_failed_sign_in` when the credential is wrong, both on its own connection (in
its transaction, so the failure commits with the rest). The address comes from
`service.api.http.client_address(request)`.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from service.config import DEFAULT_SIGNIN_ADDRESS_LIMIT
from service.db import sign_in_throttle as throttle_db
from service.domain.errors import ApiError
from service.domain.language import Said
from service.domain.throttle import ADDRESS_WINDOW, retry_after_seconds


async def refuse_if_address_throttled(
    conn: asyncpg.Connection,
    address: str,
    now: datetime,
    *,
    limit: int = DEFAULT_SIGNIN_ADDRESS_LIMIT,
) -> None:
    """too_many_attempts (with Retry-After) when `address` has failed `limit` times
    in the window; `limit` 0 (YOUDAI_SIGNIN_ADDRESS_LIMIT=0) turns the check off."""
    if limit <= 0:
        return
    started = await throttle_db.window_start_if_over(conn, address, now, ADDRESS_WINDOW, limit)
    if started is not None:
        seconds = retry_after_seconds(started, now)
        raise ApiError(
            "too_many_attempts",
            Said(
                f"Too many failed sign-ins from this address: try again in "
                f"{-(-seconds // 60)} minute(s)",
                f"此地址登录失败次数过多：请在 {-(-seconds // 60)} 分钟后再试",
            ),
            headers={"Retry-After": str(seconds)},
        )


async def record_failed_sign_in(conn: asyncpg.Connection, address: str, now: datetime) -> None:
    """Count one failed sign-in of any kind from `address`."""
    await throttle_db.record_failure(conn, address, now, ADDRESS_WINDOW)


async def forget_old_failures(conn: asyncpg.Connection) -> int:
    return await throttle_db.forget_old_failures(conn, ADDRESS_WINDOW)
