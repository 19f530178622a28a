"""SQL for holder import jobs: the job row, the rows waiting in the job's temporary
table, and the one statement that writes them all to holders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

from service.domain.holder_imports import HolderImport
from service.domain.holders import HolderRow

#: The session advisory lock the connection of the running job holds ("yd" "import"):
#: taken, a job runs; free, none does, whatever holder_imports says.
IMPORT_LOCK_KEY = 0x7964_696D_706F_7274

_COLUMNS = "id, status, rows, done, created, updated, detail, created_at, finished_at"


def _job(record: asyncpg.Record) -> HolderImport:
    return HolderImport(**dict(record))


async def take_import_lock(conn: asyncpg.Connection) -> bool:
    """On the job's own connection (never a pooled one): whether no other job runs."""
    # Rule: one import at a time, across every process (docs/api.md: a second one is 409).
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", IMPORT_LOCK_KEY))


async def fail_abandoned(conn: asyncpg.Connection, detail: str) -> int:
    """Mark failed every job still `running` although no connection holds the import
    lock any more: its process died (SIGKILL, crash, lost connection) mid-job. Returns
    how many; call it holding the lock, or with it free (see fail_abandoned_if_free)."""
    result = await conn.execute(
        "UPDATE holder_imports SET status = 'failed', detail = $1, finished_at = now() "
        "WHERE status = 'running'",
        detail,
    )
    return int(result.split()[-1])


async def fail_abandoned_if_free(conn: asyncpg.Connection, detail: str) -> int:
    """fail_abandoned, when (and only when) no job holds the import lock right now."""
    async with conn.transaction():
        # A transaction-level try: pooled connections never keep a session lock.
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", IMPORT_LOCK_KEY):
            return 0
        return await fail_abandoned(conn, detail)


async def insert_job(conn: asyncpg.Connection, job_id: str, rows: int) -> HolderImport:
    record = await conn.fetchrow(
        f"INSERT INTO holder_imports (id, rows) VALUES ($1, $2) RETURNING {_COLUMNS}",
        job_id,
        rows,
    )
    return _job(record)


async def get_job(conn: asyncpg.Connection, job_id: str) -> HolderImport | None:
    record = await conn.fetchrow(f"SELECT {_COLUMNS} FROM holder_imports WHERE id = $1", job_id)
    return None if record is None else _job(record)


async def set_done(conn: asyncpg.Connection, job_id: str, done: int) -> None:
    await conn.execute(
        "UPDATE holder_imports SET done = $2 WHERE id = $1 AND status = 'running'", job_id, done
    )


async def finish_job(
    conn: asyncpg.Connection,
    job_id: str,
    *,
    status: str,
    created: int = 0,
    updated: int = 0,
    detail: str | None = None,
) -> HolderImport | None:
    """End a running job; None when it had already ended (marked failed meanwhile)."""
    record = await conn.fetchrow(
        f"""
        UPDATE holder_imports
        SET status = $2, created = $3, updated = $4, detail = $5, finished_at = now(),
            done = CASE WHEN $2 = 'completed' THEN rows ELSE done END
        WHERE id = $1 AND status = 'running'
        RETURNING {_COLUMNS}
        """,
        job_id,
        status,
        created,
        updated,
        detail,
    )
    return None if record is None else _job(record)


async def create_staging(conn: asyncpg.Connection) -> None:
    """The job's temporary table: it lives and dies with the job's connection, so a job
    cut short leaves none of its rows anywhere."""
    await conn.execute(
        """
        CREATE TEMPORARY TABLE holder_import_rows (
            id text NOT NULL, card_number text NOT NULL, category text NOT NULL,
            display_name text NOT NULL, region text NOT NULL, valid_until date NOT NULL,
            pin_hash text NOT NULL
        )
        """
    )


async def stored_pin_hashes(conn: asyncpg.Connection, cards: Sequence[str]) -> dict[str, str]:
    """{card number: pin_hash} of the cards already enrolled."""
    records = await conn.fetch(
        "SELECT card_number, pin_hash FROM holders WHERE card_number = ANY($1::text[])", cards
    )
    return {record["card_number"]: record["pin_hash"] for record in records}


async def stage_rows(conn: asyncpg.Connection, rows: Sequence[tuple[str, HolderRow, str]]) -> None:
    """Add (new holder id, row, pin hash) triples to the job's temporary table."""
    records: list[tuple[str, str, str, str, str, date, str]] = [
        (
            holder_id,
            row.card_number,
            row.category,
            row.display_name,
            row.region,
            row.valid_until,
            pin_hash,
        )
        for holder_id, row, pin_hash in rows
    ]
    await conn.copy_records_to_table("holder_import_rows", records=records)


async def write_staged(conn: asyncpg.Connection) -> tuple[int, int]:
    """Create or update every holder of the temporary table: (created, updated). Call it
    inside the job's last transaction."""
    record = await conn.fetchrow(
        """
        WITH written AS (
            INSERT INTO holders AS h
                (id, card_number, category, display_name, region, valid_until, pin_hash)
            -- In card order, so that two writers of the same cards cannot deadlock.
            SELECT id, card_number, category, display_name, region, valid_until, pin_hash
            FROM holder_import_rows ORDER BY card_number
            -- A card enrolled before (or meanwhile) takes the file's values; its status is
            -- the bureau's to change, not the file's.
            ON CONFLICT (card_number) DO UPDATE
            SET category = EXCLUDED.category, display_name = EXCLUDED.display_name,
                region = EXCLUDED.region, valid_until = EXCLUDED.valid_until,
                pin_hash = EXCLUDED.pin_hash, updated_at = now(),
                -- A new PIN starts the sign-in lockout afresh, as an admin's PIN reset does.
                failed_pin_count = CASE WHEN h.pin_hash = EXCLUDED.pin_hash
                    THEN h.failed_pin_count ELSE 0 END,
                failed_pin_window_started_at = CASE WHEN h.pin_hash = EXCLUDED.pin_hash
                    THEN h.failed_pin_window_started_at END,
                locked_until = CASE WHEN h.pin_hash = EXCLUDED.pin_hash THEN h.locked_until END
            -- Rule: re-importing the same file changes nothing (docs/api.md): a row equal to
            -- the stored holder, with the hash its PIN verified against, is not written.
            WHERE (h.category, h.display_name, h.region, h.valid_until, h.pin_hash)
                IS DISTINCT FROM (EXCLUDED.category, EXCLUDED.display_name, EXCLUDED.region,
                                  EXCLUDED.valid_until, EXCLUDED.pin_hash)
            RETURNING xmax = 0 AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted) AS created,
               count(*) FILTER (WHERE NOT inserted) AS updated
        FROM written
        """
    )
    return record["created"], record["updated"]
