"""The database's side of `youdai backup` and `youdai restore` (service/backup.py runs the
PostgreSQL tools): the snapshot a dump reads, and the checks before and after a restore."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from service.config import ConfigError
from service.db import backup as backup_db
from service.db.backup import Contents
from service.db.connection import connected, describe

__all__ = ["Contents", "dump_in_snapshot", "restore_into_empty"]


async def dump_in_snapshot(dsn: str, dump: Callable[[str], Awaitable[None]]) -> Contents:
    """Call `dump(snapshot)` while a repeatable-read transaction holds that snapshot open,
    and answer what the snapshot holds (the same rows the dump writes)."""
    async with (
        connected(dsn) as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        snapshot = await backup_db.export_snapshot(conn)
        found = await backup_db.contents(conn)
        if found.schema_version is None:
            raise ConfigError(f"{describe(dsn)} holds no youdai data: nothing to back up")
        await dump(snapshot)
    return found


async def restore_into_empty(
    dsn: str, load: Callable[[frozenset[str]], Awaitable[None]]
) -> Contents:
    """Call `load(settings the server knows)` if the database is empty, and answer what
    it holds afterwards."""
    async with connected(dsn) as conn:
        if await backup_db.user_relations(conn):
            raise ConfigError(
                f"{describe(dsn)} is not empty: restore only into a new, empty database"
            )
        await load(frozenset(await backup_db.server_settings(conn)))
        return await backup_db.contents(conn)
