"""Holder import as a job (docs/api.md): check the whole file, then create or update its
holders in the background, all or nothing, one job at a time.

1. The file is checked first, with no hashing and keeping no row: a bad file is refused
   (validation_error) with its first 1 000 errors and `error_count`.
2. A good file opens the job on a connection of its own, which holds a session advisory
   lock for as long as the job runs: another import, in any process, is `conflict`;
   and a job still `running` while nobody holds the lock was cut short (its process
   died) and is marked `failed` by whoever notices first.
3. The job reads the file again in chunks: for each row, the stored hash of a known card
   is verified against the file's PIN (kept if it matches) or a new hash is made, on
   every core (service.pin_hashing); the rows wait in a temporary table of the job's
   connection. Memory is the file plus a few chunks, whatever the row count.
4. One transaction writes every waiting row to holders, ends the job `completed` and
   records its audit event. Until it commits no holder of the file is visible; if the
   job is cut short before, its temporary table goes with its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from itertools import islice

import asyncpg

from service.background import run_in_background
from service.db import audit
from service.db import holder_imports as imports_db
from service.db.pool import connect_or_unreachable, init_connection
from service.domain.auth import Principal
from service.domain.errors import ApiError
from service.domain.holder_imports import CUT_SHORT, STOPPED, HolderImport
from service.domain.holders import HolderRow, check_holders_csv, iter_holder_rows
from service.domain.ids import new_id
from service.domain.language import Said
from service.flows.database import Database, connection
from service.pin_hashing import PinHashPool

log = logging.getLogger("youdai.imports")

#: Rows read, looked up and staged together.
CHUNK_ROWS = 256
#: Rows per task of the hashing pool: ~0.4 s of one core, so IPC costs nothing by comparison.
BATCH_ROWS = 16
#: Tasks queued per hashing process, so that no core waits while a chunk is staged.
TASKS_PER_WORKER = 3
#: Seconds between two writes of `done` to the job's row.
PROGRESS_INTERVAL = 0.5
#: Seconds any one statement of the job may take (its final write is one statement for the
#: whole file).
JOB_COMMAND_TIMEOUT = 600

Progress = Callable[[int], None]


async def check_file(data: bytes) -> int:
    """The number of holder rows of a good file; a bad one is validation_error with its errors."""
    # Seconds of pure Python for a large file: in a thread it would hold the GIL, and the
    # event loop serving tills would wait for it; in a background process it waits for them.
    check = await run_in_background(check_holders_csv, data)
    if check.error_count:
        first = check.errors[0]
        raise ApiError(
            "validation_error",
            Said(
                f"{check.error_count} problem(s) in the file, first on line {first.line}; "
                "nothing was imported",
                f"文件中有 {check.error_count} 个问题，第一个在第 {first.line} 行；未导入任何数据",
            ),
            errors=list(check.errors),
            extra={"error_count": check.error_count},
        )
    return check.rows


async def open_job(dsn: str, rows: int) -> tuple[asyncpg.Connection, HolderImport]:
    """A new running job and the connection that holds its lock (the caller runs it with
    run_job, which closes the connection); conflict while another job runs."""
    # Unreachable, it is database_unavailable like a pooled connection (db/pool.py).
    conn = await connect_or_unreachable(
        dsn,
        command_timeout=JOB_COMMAND_TIMEOUT,
        server_settings={
            "application_name": "youdai-import",
            # The job's process gone (SIGKILL), its backend quits within a second even in
            # the middle of a statement, and the import lock is free for the next job.
            "client_connection_check_interval": "1s",
        },
    )
    try:
        await init_connection(conn)
        if not await imports_db.take_import_lock(conn):
            raise ApiError(
                "conflict",
                Said(
                    "Another holder import is running: wait until it has completed or failed",
                    "另一个持证人导入任务正在运行：请等待其完成或失败",
                ),
            )
        abandoned = await imports_db.fail_abandoned(conn, CUT_SHORT)
        if abandoned:
            log.warning("marked abandoned holder imports failed", extra={"jobs": abandoned})
        job = await imports_db.insert_job(conn, new_id("holder_import"), rows)
    except BaseException:
        conn.terminate()
        raise
    return conn, job


async def run_job(
    dsn: str,
    conn: asyncpg.Connection,
    job: HolderImport,
    data: bytes,
    caller: Principal | None,
    *,
    on_progress: Progress | None = None,
    workers: int | None = None,
) -> HolderImport:
    """Run an opened job to its end and close its connection: the job completed, or
    failed (with a `detail`) and nothing written. Cancelled (shutdown, Ctrl-C), the job
    ends failed and the cancellation goes on."""
    started = time.perf_counter()
    try:
        await imports_db.create_staging(conn)
        async with PinHashPool(workers) as pool:
            await _stage_every_row(conn, pool, job, data, on_progress)
        hashed = time.perf_counter()
        final = await _write_staged(conn, job, caller)
        ended = time.perf_counter()
    except asyncio.CancelledError:
        # A statement may be in flight: drop the connection (its transaction, temporary
        # table and lock go with it) and say why on another one.
        conn.terminate()
        await _mark_failed(dsn, job, STOPPED)
        raise
    except Exception as error:
        log.exception("holder import failed", extra={"import_id": job.id})
        conn.terminate()
        return await _mark_failed(dsn, job, f"The import failed ({error}); nothing was written.")
    finally:
        if not conn.is_closed():
            await conn.close()
    log.info(
        "holder import completed",
        extra={
            "import_id": job.id,
            "rows": job.rows,
            "holders_created": final.created,
            "holders_updated": final.updated,
            "seconds": round(ended - started, 3),
            "write_seconds": round(ended - hashed, 3),
        },
    )
    return final


async def _write_staged(
    conn: asyncpg.Connection, job: HolderImport, caller: Principal | None
) -> HolderImport:
    """In one transaction: the staged rows become holders, the job completed, audited."""
    async with conn.transaction():
        created, updated = await imports_db.write_staged(conn)
        final = await imports_db.finish_job(
            conn, job.id, status="completed", created=created, updated=updated
        )
        assert final is not None, "a job holding the import lock is never marked failed"
        await audit.record(
            conn,
            caller,
            "holder.import",
            "holder_import",
            job.id,
            {"rows": [None, job.rows], "created": [None, created], "updated": [None, updated]},
        )
    return final


async def _stage_every_row(
    conn: asyncpg.Connection,
    pool: PinHashPool,
    job: HolderImport,
    data: bytes,
    on_progress: Progress | None,
) -> None:
    """Hash every row of the file on the pool and put it in the temporary table, keeping
    every core busy while only a few chunks are in memory."""
    rows = iter_holder_rows(data)
    in_flight: deque[tuple[list[HolderRow], list[asyncio.Future[list[str]]]]] = deque()
    chunks_in_flight = max(2, math.ceil(pool.workers * TASKS_PER_WORKER * BATCH_ROWS / CHUNK_ROWS))
    done = 0
    flushed_at = time.monotonic()

    async def stage_oldest() -> None:
        nonlocal done, flushed_at
        chunk, tasks = in_flight.popleft()
        hashes: list[str] = []
        for task in tasks:
            batch = await task
            hashes.extend(batch)
            done += len(batch)
            if on_progress is not None:
                on_progress(done)
        await imports_db.stage_rows(
            conn,
            [
                (new_id("holder"), row, pin_hash)
                for row, pin_hash in zip(chunk, hashes, strict=True)
            ],
        )
        if time.monotonic() - flushed_at >= PROGRESS_INTERVAL:
            await imports_db.set_done(conn, job.id, done)
            flushed_at = time.monotonic()

    try:
        while chunk := await asyncio.to_thread(lambda: list(islice(rows, CHUNK_ROWS))):
            stored = await imports_db.stored_pin_hashes(conn, [row.card_number for row in chunk])
            work = [(row.pin, stored.get(row.card_number)) for row in chunk]
            tasks = [
                pool.hashes(work[start : start + BATCH_ROWS])
                for start in range(0, len(work), BATCH_ROWS)
            ]
            in_flight.append((chunk, tasks))
            while len(in_flight) >= chunks_in_flight:
                await stage_oldest()
        while in_flight:
            await stage_oldest()
        await imports_db.set_done(conn, job.id, done)
    finally:
        for _, tasks in in_flight:  # cut short: nobody will wait for these
            for task in tasks:
                task.cancel()


async def _mark_failed(dsn: str, job: HolderImport, detail: str) -> HolderImport:
    """End the job failed, on a connection of its own (the job's may be broken); if even
    that fails, the next caller that finds the import lock free does it."""
    try:
        other = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        log.warning("could not mark the holder import failed", extra={"import_id": job.id})
        return job
    try:
        await init_connection(other)
        ended = await imports_db.finish_job(other, job.id, status="failed", detail=detail)
        return ended or (await imports_db.get_job(other, job.id)) or job
    finally:
        await other.close()


async def get_import(db: Database, import_id: str) -> HolderImport:
    """A job as it stands; one whose process died mid-job shows `failed`."""
    async with connection(db) as conn:
        job = await imports_db.get_job(conn, import_id)
        if job is None:
            raise ApiError("not_found", Said("No such holder import", "没有此持证人导入任务"))
        if job.status == "running" and await imports_db.fail_abandoned_if_free(conn, CUT_SHORT):
            job = await imports_db.get_job(conn, import_id)
            assert job is not None
    return job


class ImportJobs:
    """The holder import a server process runs in the background, if any.

    Shut down with the app: a job still running is stopped and ends failed (it could
    not finish in the shutdown grace), with nothing written.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._tasks: set[asyncio.Task[HolderImport]] = set()

    async def start(self, caller: Principal, data: bytes) -> HolderImport:
        """Check the file and start its job: the job as it starts (`running`, done 0)."""
        rows = await check_file(data)
        conn, job = await open_job(self.dsn, rows)
        task = asyncio.create_task(
            run_job(self.dsn, conn, job, data, caller), name=f"import {job.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
