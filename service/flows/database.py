"""How a use case reaches PostgreSQL: it is handed the pool (a handler, the app) or a
connection already open (another flow's transaction, the command line, a test), and
opens what it needs itself. Handlers never acquire a connection (ARCHITECTURE.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

import asyncpg

from service.db.connection import (
    NoSuchDatabase,
    connected,
    database,
    describe,
    take_turns,
    where,
)
from service.db.pool import create_pool

#: The plumbing the edge (app.py, cli.py, demo.py) opens PostgreSQL with: the edge reaches
#: the database through flows only (ARCHITECTURE.md; pyproject.toml's import contracts).
__all__ = [
    "Database",
    "NoSuchDatabase",
    "connected",
    "connection",
    "create_pool",
    "database",
    "describe",
    "take_turns",
    "where",
]

#: The pool, or one connection the caller holds (its transaction, if any, is joined:
#: a flow's own `conn.transaction()` becomes a savepoint of it).
Database: TypeAlias = "asyncpg.Pool | asyncpg.Connection"


@asynccontextmanager
async def connection(db: Database) -> AsyncIterator[asyncpg.Connection]:
    """One connection for the use case: acquired from the pool and given back after,
    or the caller's own."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db
