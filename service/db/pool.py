"""The one asyncpg pool of a process.

Every wait on PostgreSQL is bounded, so that when the server goes away a request
answers 503 `database_unavailable` instead of hanging: connecting (CONNECT_TIMEOUT),
waiting for a pooled connection (ACQUIRE_TIMEOUT, which includes connecting), and
each query (COMMAND_TIMEOUT). A stopped server refuses connections at once; the
limits matter when it stops answering without refusing (a network partition).
Connections the server dropped are replaced on the next acquire, so the service
recovers by itself when PostgreSQL is back.

Failing to reach the server raises DatabaseUnreachable, not the socket's own OSError:
an OSError alone does not say whose socket failed, and a client that hangs up while
its request is read raises one too (ConnectionResetError) — that is no outage.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from service.config import Settings

#: Seconds a query may run before the caller gets database_unavailable instead of a hang.
COMMAND_TIMEOUT = 15
#: Seconds to wait for a connection when the database does not answer.
CONNECT_TIMEOUT = 5
#: Seconds a request waits for a pooled connection (a free one, or a new one connecting).
ACQUIRE_TIMEOUT = 10


class DatabaseUnreachable(Exception):
    """Connecting to PostgreSQL failed at the socket: refused, unreachable, no such host
    or socket file, or no answer within CONNECT_TIMEOUT."""


async def connect_or_unreachable(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """asyncpg.connect for the pool, its socket errors named DatabaseUnreachable."""
    try:
        return await asyncpg.connect(*args, **kwargs)
    except OSError as error:  # TimeoutError included
        raise DatabaseUnreachable(f"{type(error).__name__}: {error}") from error


class BoundedPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg ships no types
    """An asyncpg pool whose acquire() gives up after ACQUIRE_TIMEOUT unless told otherwise."""

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=ACQUIRE_TIMEOUT if timeout is None else timeout)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection setup shared by the pool and one-off CLI connections."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool: nothing more.

    asyncpg rolls back a transaction left open on its own before calling this. Its
    default reset would also send `SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`: one more round trip on every release, two per redeem
    (authentication, then the redeem) on top of its three statements; under load,
    round trips are most of what a request costs (bench/redeem.py). Pooled
    connections never change session state: no session advisory locks (only
    pg_*_xact_lock), no LISTEN, no cursors held past a transaction, no SET outside a
    transaction. Code that needs any of those uses a connection of its own (as
    migrations do), never a pooled one.
    """


async def create_pool(settings: Settings, dsn: str) -> asyncpg.Pool:
    pool = BoundedPool(
        dsn,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connect=connect_or_unreachable,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        command_timeout=COMMAND_TIMEOUT,
        timeout=CONNECT_TIMEOUT,
        init=init_connection,
        reset=keep_session,
        server_settings={"application_name": "youdai", "timezone": "UTC"},
    )
    return await pool
