"""Reaching PostgreSQL: the one in DATABASE_URL or the embedded one, a single
connection for the CLI, and the errors that mean the server is down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import asyncpg

from service.config import ConfigError, Settings
from service.db.embedded import EmbeddedPostgres, ensure_database
from service.db.pool import DatabaseUnreachable, init_connection

#: Errors that mean PostgreSQL is unreachable rather than that the request is wrong
#: (the error middleware answers them 503 database_unavailable). Only errors that come
#: from PostgreSQL or from reaching it: not any OSError, since a client that hangs up
#: mid-request raises one too (ConnectionResetError while its body is read), and a
#: hang-up is no outage (SPEC 6).
DATABASE_DOWN = (
    DatabaseUnreachable,
    asyncio.TimeoutError,  # a query past COMMAND_TIMEOUT, an acquire past ACQUIRE_TIMEOUT
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or is gone
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """Yield the DSN to use; start the embedded server first when DATABASE_URL is unset,
    and let go of it (stopping it if we were the last user) when done."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    try:
        maintenance_url = embedded.start()
    except Exception as error:
        raise ConfigError(
            f"could not start the embedded PostgreSQL in {embedded.pgdata}: {error}"
        ) from None
    try:
        asyncio.run(ensure_database(maintenance_url))
        yield embedded.url()
    finally:
        embedded.stop()


def describe(dsn: str) -> str:
    """The DSN without credentials, for messages."""
    parts = urlsplit(dsn)
    host = parts.hostname or parts.query or "local socket"
    return f"{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection; an unreachable server becomes one clear ConfigError line."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        reason = str(error) or type(error).__name__
        raise ConfigError(f"cannot connect to PostgreSQL at {describe(dsn)}: {reason}") from None
    await init_connection(conn)
    return conn
