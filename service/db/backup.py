"""What a database holds, read for `youdai backup` and `youdai restore` (service/backup.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import asyncpg


@dataclass(frozen=True, slots=True)
class Contents:
    """What a database holds, for the lines `backup` and `restore` print."""

    schema_version: int | None
    partners: int
    redemptions: int
    reversals: int

    def describe(self) -> str:
        version = "none" if self.schema_version is None else str(self.schema_version)
        return (
            f"schema version {version}, {self.partners} partner(s), "
            f"{self.redemptions} redemption(s), {self.reversals} reversal(s)"
        )


async def contents(conn: asyncpg.Connection) -> Contents:
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return Contents(None, 0, 0, 0)
    row = await conn.fetchrow(
        """
        SELECT (SELECT max(version) FROM schema_migrations) AS schema_version,
               (SELECT count(*) FROM partners) AS partners,
               (SELECT count(*) FROM redemptions) AS redemptions,
               (SELECT count(*) FROM reversals) AS reversals
        """
    )
    return Contents(**dict(row))


async def user_relations(conn: asyncpg.Connection) -> int:
    """Tables, sequences and views outside PostgreSQL's own schemas."""
    return cast(
        int,
        await conn.fetchval(
            """
        -- restore loads only into an empty database: any relation here refuses it
        SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
          AND c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
        """
        ),
    )


async def server_settings(conn: asyncpg.Connection) -> list[str]:
    """The names of the settings this server knows (a restore script may set others)."""
    return [row["name"] for row in await conn.fetch("SELECT name FROM pg_settings")]


async def export_snapshot(conn: asyncpg.Connection) -> str:
    """The name of this repeatable-read transaction's snapshot, for pg_dump --snapshot."""
    snapshot: str = await conn.fetchval("SELECT pg_export_snapshot()")
    return snapshot
