"""Reaching PostgreSQL: the one in DATABASE_URL or the embedded one, a single
connection for the CLI and the background processes, and the errors that mean the server is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlsplit

import asyncpg

from service.config import ConfigError, Settings
from service.db.embedded import EmbeddedPostgres, ensure_database
from service.db.pool import DatabaseUnreachable, init_connection

#: Errors that mean PostgreSQL is unreachable rather than that the request is wrong
#: (the error middleware answers them 503 database_unavailable). Only errors that come
#: from PostgreSQL or from reaching it: not any OSError, since a client that hangs up
#: mid-request raises one too (ConnectionResetError while its body is read), and a
#: hang-up is no outage (docs/running.md).
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


def where(settings: Settings, dsn: str | None = None) -> str:
    """Which database a command looks at and the settings that chose it, for messages."""
    if settings.database_url is not None:
        return f"the database at {describe(dsn or settings.database_url)} (DATABASE_URL)"
    data_dir = settings.data_dir.resolve()
    return (
        f"the embedded database in {data_dir / 'pgdata'} "
        f"(YOUDAI_DATA_DIR={data_dir}; DATABASE_URL unset)"
    )


@contextmanager
def database(settings: Settings, *, existing: bool = False) -> Iterator[str]:
    """Yield the DSN to use; start the embedded server first when DATABASE_URL is unset,
    and let go of it (stopping it if we were the last user) when done.

    `existing`: for commands that only read. An embedded database that is not there is
    one ConfigError line, never a new empty one (run from the wrong folder, `report`
    must not leave a fresh .youdai behind)."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    if existing and not (embedded.pgdata / "PG_VERSION").is_file():
        raise ConfigError(
            f"there is no youdai database here: {where(settings)} does not exist; run from "
            "the installation's folder, or set YOUDAI_DATA_DIR or DATABASE_URL"
        )
    try:
        maintenance_url = embedded.start()
    except Exception as error:
        raise ConfigError(
            f"could not start the embedded PostgreSQL in {embedded.pgdata}: {error}"
        ) from None
    try:
        if not existing:
            asyncio.run(ensure_database(maintenance_url))
        yield embedded.url()
    finally:
        embedded.stop()


def describe(dsn: str) -> str:
    """The DSN without credentials, for messages."""
    parts = urlsplit(dsn)
    host = parts.hostname or parts.query or "local socket"
    return f"{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


class NoSuchDatabase(ConfigError):
    """The server answers, but the database named does not exist."""


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection; an unreachable server becomes one clear ConfigError line."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except asyncpg.InvalidCatalogNameError as error:
        raise NoSuchDatabase(f"cannot connect to PostgreSQL at {describe(dsn)}: {error}") from None
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        reason = str(error) or type(error).__name__
        raise ConfigError(f"cannot connect to PostgreSQL at {describe(dsn)}: {reason}") from None
    await init_connection(conn)
    return conn


@asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """`connect`, closed when the block ends, however it ends."""
    conn = await connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def take_turns(conn: asyncpg.Connection, lock_key: int) -> None:
    """Until this transaction ends, any other transaction taking `lock_key` waits."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key)
