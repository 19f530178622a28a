"""The `youdai` command (SPEC 6). Scripts rely on its contract: `create-key` prints the
key alone on the last line of stdout; bad configuration exits 2 with one line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from service.config import ConfigError, Settings, load_settings, parse_port
from service.db.connection import connect, database
from service.flows.housekeeping import migrate_database
from service.logs import configure_logging
from service.memory import return_large_allocations_to_the_system

if TYPE_CHECKING:
    from service.domain.holder_imports import HolderImport

log = logging.getLogger("youdai")


class _Parser(argparse.ArgumentParser):
    """Bad flags end like bad settings: one line on stderr, exit status 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"youdai: error: {message} (see youdai --help)\n")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {value!r}") from None
    if not 1 <= number <= 64:
        raise argparse.ArgumentTypeError("must be from 1 to 64")
    return number


def _port(value: str) -> int:
    try:
        return parse_port(value, "--port")
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="youdai", description=__doc__)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    serve = commands.add_parser("serve", help="migrate, then serve until SIGTERM/SIGINT")
    serve.add_argument("--host", help="address to listen on (YOUDAI_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port (YOUDAI_PORT, default 8080)")
    serve.add_argument("--workers", type=_positive, help="processes (YOUDAI_WORKERS, default 1)")
    serve.add_argument("--demo", action="store_true", help="load demo data once and print keys")
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the database to the newest schema")
    migrate.set_defaults(run=cmd_migrate)

    create_key = commands.add_parser("create-key", help="print a new API key on the last line")
    create_key.add_argument("--role", required=True, choices=["admin", "partner", "scanner"])
    create_key.add_argument("--partner", help="partner id (partner and scanner keys)")
    create_key.add_argument("--label", default="", help="a name to recognise the key by")
    create_key.set_defaults(run=cmd_create_key)

    create_staff = commands.add_parser(
        "create-staff", help="create a staff account; print its one-time setup link last"
    )
    create_staff.add_argument("--email", required=True, help="the person's email (unique)")
    create_staff.add_argument(
        "--role", required=True, choices=["bureau_admin", "bureau_auditor", "partner_manager"]
    )
    create_staff.add_argument("--name", default="", help="display name")
    create_staff.add_argument("--partner", help="partner id (a partner_manager's partner)")
    create_staff.set_defaults(run=cmd_create_staff)

    rotate = commands.add_parser(
        "rotate-signing-key", help="activate a new voucher signing key in every process at once"
    )
    rotate.set_defaults(run=cmd_rotate_signing_key)

    rotate_secret = commands.add_parser(
        "rotate-secret-key", help="re-seal the signing keys with a new YOUDAI_SECRET_KEY"
    )
    rotate_secret.add_argument(
        "--new-key-file", metavar="FILE", help="the new key (base64, 32 bytes); default: a new one"
    )
    rotate_secret.set_defaults(run=cmd_rotate_secret_key)

    reconcile = commands.add_parser(
        "reconcile", help="check every counter and report total against the ledger"
    )
    reconcile.set_defaults(run=cmd_reconcile)

    import_holders = commands.add_parser(
        "import-holders", help="create or update card holders from a CSV file (SPEC 4.2)"
    )
    import_holders.add_argument("file", metavar="FILE.csv", help="UTF-8 CSV with a header row")
    import_holders.set_defaults(run=cmd_import_holders)

    report = commands.add_parser(
        "report", help="discount totals as in GET /v1/reports/discounts, for every partner"
    )
    report.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="first day (local)")
    report.add_argument("--to", metavar="YYYY-MM-DD", help="last day, included (local)")
    report.add_argument(
        "--group-by", default="", metavar="partner,offer,category,month", help="groupings"
    )
    report.add_argument("--format", choices=["csv", "xlsx", "json"], default="csv")
    report.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    report.set_defaults(run=cmd_report)

    backup = commands.add_parser("backup", help="write a consistent dump of the database to FILE")
    backup.add_argument("file", metavar="FILE", help="the archive to write (replaced if there)")
    backup.set_defaults(run=cmd_backup)

    restore = commands.add_parser("restore", help="load a backup into an empty database")
    restore.add_argument("file", metavar="FILE", help="an archive written by youdai backup")
    restore.set_defaults(run=cmd_restore)
    return parser


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from service.server import serve_single, serve_workers

    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    # --demo is development: no load balancer to wait for after SIGTERM (SPEC 6).
    overrides["shutdown_delay"] = settings.shutdown_delay_seconds(development=args.demo)
    settings = settings.with_overrides(**overrides)
    return_large_allocations_to_the_system()
    # Until the server installs its own handlers, SIGTERM still stops the embedded
    # database on the way out (the `with` below), instead of leaving it running.
    signal.signal(signal.SIGTERM, _stop_starting)
    with database(settings) as dsn:
        applied = asyncio.run(migrate_database(dsn, settings))
        if applied:
            log.info("migrated", extra={"applied": applied})
        if args.demo:
            from service.demo import load_demo

            print(asyncio.run(load_demo(settings, dsn)), flush=True)
        if settings.workers > 1:
            return serve_workers(settings, dsn)
        serve_single(settings, dsn)
    return 0


class _StoppedWhileStarting(Exception):
    pass


def _stop_starting(signum: int, frame: object) -> None:
    raise _StoppedWhileStarting


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    with database(settings) as dsn:
        applied = asyncio.run(migrate_database(dsn, settings))
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def cmd_rotate_signing_key(settings: Settings, args: argparse.Namespace) -> int:
    """Old tokens stay valid: the retired public key stays in the JWKS until they expire."""
    from service.flows.keyring import Keyring
    from service.sealing import make_sealer

    async def rotate(dsn: str) -> str:
        await migrate_database(dsn, settings)
        keyring = Keyring(settings.token_ttl, make_sealer(settings.secret_key, settings.data_dir))
        conn = await connect(dsn)
        try:
            retired, key = await keyring.rotate(conn)
        finally:
            await conn.close()
        return f"active signing key {key.kid}" + (f" (retired {retired})" if retired else "")

    with database(settings) as dsn:
        print(asyncio.run(rotate(dsn)))
    return 0


def cmd_rotate_secret_key(settings: Settings, args: argparse.Namespace) -> int:
    """Re-seal every signing key under a new key-encryption key (deploy/CONFIG.md).

    With the data folder's key file, the file is replaced; with YOUDAI_SECRET_KEY, the
    new key is printed alone on the last line, to be set before the next start."""
    from pathlib import Path

    from service.flows.keyring import reseal_keys
    from service.sealing import (
        KEY_FILE_NAME,
        Sealer,
        generate_secret_key,
        make_sealer,
        parse_secret_key,
    )

    if args.new_key_file:
        try:
            new_text = Path(args.new_key_file).read_text()
        except OSError as error:
            raise ConfigError(f"cannot read {args.new_key_file}: {error.strerror}") from None
    else:
        new_text = generate_secret_key()
    try:
        new_key = parse_secret_key(new_text)
    except ValueError as error:
        raise ConfigError(f"--new-key-file: {error}") from None
    key_file = settings.data_dir / KEY_FILE_NAME
    pending = key_file.with_name(KEY_FILE_NAME + ".new")

    async def rotate(dsn: str) -> int:
        await migrate_database(dsn, settings)
        old = make_sealer(settings.secret_key, settings.data_dir)
        conn = await connect(dsn)
        try:
            return await reseal_keys(conn, old, Sealer(new_key))
        finally:
            await conn.close()

    with database(settings) as dsn:
        if settings.secret_key is None:
            # Written first, renamed after the commit: a crash in between leaves both.
            pending.write_text(new_text.strip() + "\n")
            pending.chmod(0o600)
        count = asyncio.run(rotate(dsn))
        if settings.secret_key is None:
            pending.replace(key_file)
            print(f"re-sealed {count} signing key(s); {key_file} holds the new key")
            return 0
    if args.new_key_file:
        print(
            f"re-sealed {count} signing key(s); set YOUDAI_SECRET_KEY to {args.new_key_file}'s key"
        )
        return 0
    print(f"re-sealed {count} signing key(s); set YOUDAI_SECRET_KEY to the key below")
    print(new_text.strip())
    return 0


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when every counter and rollup equals its ledger rows, 1 otherwise."""
    from service.db.reconcile import CHECKS, mismatches

    async def check(dsn: str) -> dict:
        conn = await connect(dsn)
        try:
            return await mismatches(conn)
        finally:
            await conn.close()

    with database(settings) as dsn:
        found = asyncio.run(check(dsn))
    for name in CHECKS:
        rows = found.get(name, [])
        print(f"{name}: {'ok' if not rows else f'{len(rows)} mismatch(es)'}")
        for row in rows[:20]:
            print("  " + ", ".join(f"{key}={value}" for key, value in row.items()))
    return 1 if found else 0


def cmd_create_key(settings: Settings, args: argparse.Namespace) -> int:
    from service.db import partners as partners_db
    from service.domain.auth import Role
    from service.flows import keys as keys_flow

    role = Role(args.role)
    if role is Role.ADMIN and args.partner:
        raise ConfigError("an admin key belongs to no partner: drop --partner")
    if role is not Role.ADMIN and not args.partner:
        raise ConfigError(f"a {role} key needs --partner ID")

    async def create(dsn: str) -> str:
        await migrate_database(dsn)
        conn = await connect(dsn)
        try:
            if args.partner and await partners_db.get_partner(conn, args.partner) is None:
                raise ConfigError(f"no partner with id {args.partner}")
            row, secret = await keys_flow.issue(
                conn, role=role, partner_id=args.partner, label=args.label, actor=None
            )
        finally:
            await conn.close()
        print(f"created {role} key {row.id}" + (f" for {args.partner}" if args.partner else ""))
        return secret

    with database(settings) as dsn:
        secret = asyncio.run(create(dsn))
    print(secret, flush=True)
    return 0


def cmd_create_staff(settings: Settings, args: argparse.Namespace) -> int:
    """The first bureau_admin comes from here (SPEC 7): the setup link, valid 72 hours,
    is printed alone on the last line of stdout."""
    from service.api.staff import setup_url
    from service.demo import base_url
    from service.domain.auth import StaffRole
    from service.domain.errors import ApiError
    from service.flows import staff as staff_flow

    if "@" not in args.email.strip(" @"):
        raise ConfigError(f"--email {args.email!r} is not an email address")

    async def create(dsn: str) -> str:
        await migrate_database(dsn)
        conn = await connect(dsn)
        try:
            invitation = await staff_flow.invite(
                conn,
                None,
                email=args.email,
                role=StaffRole(args.role),
                display_name=args.name,
                partner_id=args.partner,
            )
        except ApiError as error:
            raise ConfigError(error.detail) from None
        finally:
            await conn.close()
        account = invitation.account
        print(
            f"created {account.role} {account.email} ({account.id}); "
            f"the link below sets the password, once, within 72 hours"
        )
        return setup_url(base_url(settings), invitation.setup_token)

    with database(settings) as dsn:
        link = asyncio.run(create(dsn))
    print(link, flush=True)
    return 0


def cmd_import_holders(settings: Settings, args: argparse.Namespace) -> int:
    """The job of POST /v1/holders/import, run in this process until it ends: a progress
    bar on stderr (on a terminal), then {"created", "updated"} on stdout. A bad file:
    its bad lines (the first 1 000) on stderr, exit 1, nothing written; so too when
    another import is running or the job fails. Ctrl-C stops the job: nothing written."""
    import json

    from tqdm import tqdm

    from service.domain.errors import ApiError
    from service.domain.holders import check_holders_csv
    from service.flows import holder_imports as imports_flow

    try:
        with open(args.file, "rb") as file:
            data = file.read()
    except OSError as error:
        raise ConfigError(f"cannot read {args.file}: {error.strerror or error}") from None
    check = check_holders_csv(data)
    if check.error_count:
        for line_error in check.errors:
            print(
                f"{args.file}:{line_error.line}: {line_error.field}: {line_error.message}",
                file=sys.stderr,
            )
        listed = len(check.errors)
        shown = f" (the first {listed} shown)" if listed < check.error_count else ""
        print(f"{check.error_count} problem(s){shown}; nothing was imported", file=sys.stderr)
        return 1

    async def run(dsn: str) -> HolderImport:
        await migrate_database(dsn)
        conn, job = await imports_flow.open_job(dsn, check.rows)
        # tqdm (maintained, no dependencies): disable=None draws only on a terminal.
        with tqdm(total=job.rows, unit="row", desc=job.id, file=sys.stderr, disable=None) as bar:
            return await imports_flow.run_job(
                dsn, conn, job, data, None, on_progress=lambda done: bar.update(done - bar.n)
            )

    try:
        with database(settings) as dsn:
            job = asyncio.run(run(dsn))
    except ApiError as error:  # another import is running
        print(f"youdai: {error.detail}", file=sys.stderr)
        return 1
    if job.status != "completed":
        print(f"youdai: {job.detail}", file=sys.stderr)
        return 1
    print(json.dumps({"created": job.created, "updated": job.updated}), flush=True)
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    """The bytes GET /v1/reports/discounts answers an admin (default: this calendar year,
    CSV on stdout)."""
    import json
    from datetime import UTC, datetime

    from schemas.report_files import to_csv, to_xlsx
    from schemas.reports import DiscountReportSchema
    from service.domain.errors import ApiError
    from service.domain.reports import parse_date, parse_group_by, period_of
    from service.flows import reports as reports_flow

    try:
        period = period_of(
            parse_date(args.from_, "--from") if args.from_ else None,
            parse_date(args.to, "--to") if args.to else None,
            datetime.now(UTC),
            settings.timezone,
        )
        group_by = parse_group_by(args.group_by)
    except ApiError as error:
        raise ConfigError(error.detail) from None
    except ValueError as error:
        raise ConfigError(f"--group-by: {error}") from None
    if args.format == "xlsx" and args.output is None and sys.stdout.isatty():
        raise ConfigError("an XLSX file goes to -o FILE, not to a terminal")

    async def build(dsn: str) -> dict:
        conn = await connect(dsn)
        try:
            return await reports_flow.discount_report(conn, None, period, group_by)
        finally:
            await conn.close()

    with database(settings) as dsn:
        report = asyncio.run(build(dsn))
    if args.format == "json":
        shown = DiscountReportSchema().dump(report)
        data = (json.dumps(shown, ensure_ascii=False, indent=2) + "\n").encode()
    else:
        data = to_csv(report) if args.format == "csv" else to_xlsx(report)
    if args.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    try:
        with open(args.output, "wb") as file:
            file.write(data)
    except OSError as error:
        raise ConfigError(f"cannot write {args.output}: {error.strerror or error}") from None
    totals = report["totals"]
    print(
        f"wrote {args.output}: {len(report['rows'])} row(s), {totals['redemptions']} "
        f"redemption(s), discount {totals['discount_total']} fen, {period.first} to {period.last}"
    )
    return 0


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    """One snapshot: every redemption committed before it started is in the file."""
    from pathlib import Path

    from service import backup

    with database(settings) as dsn:
        found = asyncio.run(backup.backup(dsn, Path(args.file)))
    print(f"wrote {args.file}: {found.describe()}", flush=True)
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Refuses a database that holds any table; `youdai serve` migrates it afterwards."""
    from pathlib import Path

    from service import backup

    with database(settings) as dsn:
        found = asyncio.run(backup.restore(dsn, Path(args.file)))
    print(f"restored {args.file}: {found.describe()}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        return _fail(str(error))
    configure_logging(settings.log_format, settings.log_level)
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    try:
        return run(settings, args)
    except ConfigError as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        return 130
    except _StoppedWhileStarting:
        return 0


def _fail(message: str) -> int:
    print(f"youdai: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
