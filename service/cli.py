"""The `youdai` command (docs/running.md). Scripts rely on its contract: `create-key` prints the
key alone on the last line of stdout; bad configuration exits 2 with one line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, NoReturn

import asyncpg

from service.config import ConfigError, Settings, load_settings, parse_port
from service.flows.database import NoSuchDatabase, connected, database, where
from service.flows.housekeeping import migrate_database
from service.logs import configure_logging
from service.memory import return_large_allocations_to_the_system

if TYPE_CHECKING:
    from service.domain.holder_imports import HolderImport
    from service.flows import secret_key as secret_key_flow

log = logging.getLogger("youdai")

EPILOG = """\
Which database every command uses: DATABASE_URL (a postgresql:// URL; production), or
when it is unset the embedded PostgreSQL in YOUDAI_DATA_DIR (default ./.youdai, relative
to the working directory). With DATABASE_URL, YOUDAI_SECRET_KEY must be set too. All
settings: deploy/CONFIG.md."""


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
    parser = _Parser(
        prog="youdai",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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

    reset = commands.add_parser(
        "reset-signing-keys",
        help="after losing YOUDAI_SECRET_KEY: drop what it sealed, sign with a new key",
    )
    reset.add_argument(
        "--new-secret-key-file",
        metavar="FILE",
        help="the new YOUDAI_SECRET_KEY (base64, 32 bytes); default: YOUDAI_SECRET_KEY as set",
    )
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.set_defaults(run=cmd_reset_signing_keys)

    reconcile = commands.add_parser(
        "reconcile", help="check every counter and report total against the ledger"
    )
    reconcile.set_defaults(run=cmd_reconcile)

    import_holders = commands.add_parser(
        "import-holders", help="create or update card holders from a CSV file (docs/api.md)"
    )
    import_holders.add_argument("file", metavar="FILE.csv", help="UTF-8 CSV with a header row")
    import_holders.set_defaults(run=cmd_import_holders)

    report = commands.add_parser(
        "report", help="discount totals as in GET /v1/reports/discounts, for every partner"
    )
    report.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="first day (local)")
    report.add_argument("--to", metavar="YYYY-MM-DD", help="last day, included (local)")
    report.add_argument(
        "--group-by",
        default="partner",
        metavar="partner,offer,category,month",
        help="groupings (default: partner, one row per partner; '' for the totals alone)",
    )
    report.add_argument("--format", choices=["csv", "xlsx", "json"], default="csv")
    report.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    report.set_defaults(run=cmd_report)

    export_ledger = commands.add_parser(
        "export-ledger", help="write the tamper-evident log's entries to FILE, one leaf a line"
    )
    export_ledger.add_argument("file", metavar="FILE", help="the file to write (replaced)")
    export_ledger.set_defaults(run=cmd_export_ledger)

    verify_statement = commands.add_parser(
        "verify-statement",
        help="check a signed statement with the JWKS and the exported entries alone "
        "(no database, no network)",
    )
    verify_statement.add_argument(
        "statement", metavar="STATEMENT", help="a file holding the statement's JWS or its JSON"
    )
    verify_statement.add_argument(
        "--jwks", required=True, metavar="JWKS_FILE", help="/.well-known/jwks.json, saved"
    )
    verify_statement.add_argument(
        "--entries", required=True, metavar="FILE", help="written by youdai export-ledger"
    )
    verify_statement.set_defaults(run=cmd_verify_statement)

    verify_ledger = commands.add_parser(
        "verify-ledger",
        help="recompute the stored log against every checkpoint signed; name the first "
        "entry that differs",
    )
    verify_ledger.set_defaults(run=cmd_verify_ledger)

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
    # --demo is development: no load balancer to wait for after SIGTERM (docs/running.md).
    overrides["shutdown_delay"] = settings.shutdown_delay_seconds(development=args.demo)
    settings = settings.with_overrides(**overrides)
    if args.demo:
        from service.demo import demo_settings

        settings = demo_settings(settings)
    return_large_allocations_to_the_system()
    # Until the server installs its own handlers, SIGTERM still stops the embedded
    # database on the way out (the `with` below), instead of leaving it running.
    signal.signal(signal.SIGTERM, _stop_starting)
    sealer = settings.sealer()  # before anything starts: a missing key is one line
    with database(settings) as dsn:
        applied = asyncio.run(migrate_database(dsn, sealer))
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
    """The schema only: no key-encryption key is needed, and none is ever made here (the
    migration Job has no data folder). A key in reach is checked against the signing
    keys, so a wrong one in the Secret stops the rollout before any pod starts."""
    with database(settings) as dsn:
        applied = asyncio.run(migrate_database(dsn, settings.sealer_in_reach()))
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def cmd_rotate_signing_key(settings: Settings, args: argparse.Namespace) -> int:
    """Old tokens stay valid: the retired public key stays in the JWKS until they expire."""
    from service.flows.keyring import Keyring

    sealer = settings.sealer()

    async def rotate(dsn: str) -> str:
        await migrate_database(dsn, sealer)
        keyring = Keyring(settings.token_ttl, sealer)
        async with connected(dsn) as conn:
            retired, key = await keyring.rotate(conn)
        return f"active signing key {key.kid}" + (f" (retired {retired})" if retired else "")

    with database(settings) as dsn:
        print(asyncio.run(rotate(dsn)))
    return 0


def _read_key_file(path: str, flag: str) -> tuple[str, bytes]:
    """A key-encryption key from a file named by a flag: (its text, its 32 bytes)."""
    from pathlib import Path

    from service.sealing import parse_secret_key

    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        return text.strip(), parse_secret_key(text)
    except ValueError as error:
        raise ConfigError(f"{flag}: {error}") from None


def cmd_rotate_secret_key(settings: Settings, args: argparse.Namespace) -> int:
    """Re-seal every signing key and staff TOTP secret under a new key-encryption key
    (deploy/CONFIG.md).

    With the data folder's key file, the file is replaced; with YOUDAI_SECRET_KEY, the
    new key is printed alone on the last line, to be set before the next start."""
    from service.flows import secret_key as secret_key_flow
    from service.flows.keyring import SecretKeyMismatch
    from service.sealing import KEY_FILE_NAME, Sealer, generate_secret_key, parse_secret_key

    if args.new_key_file:
        new_text, new_key = _read_key_file(args.new_key_file, "--new-key-file")
    else:
        new_text = generate_secret_key()
        new_key = parse_secret_key(new_text)
    old = settings.sealer()
    key_file = settings.data_dir / KEY_FILE_NAME
    pending = key_file.with_name(KEY_FILE_NAME + ".new")

    async def rotate(dsn: str) -> secret_key_flow.Resealed:
        await migrate_database(dsn, old)
        async with connected(dsn) as conn:
            try:
                return await secret_key_flow.reseal(conn, old, Sealer(new_key))
            except SecretKeyMismatch as error:
                raise ConfigError(str(error)) from None

    with database(settings) as dsn:
        if settings.secret_key is None:
            # Written first, renamed after the commit: a crash in between leaves both.
            pending.write_text(new_text + "\n")
            pending.chmod(0o600)
        try:
            done = asyncio.run(rotate(dsn))
        except BaseException:
            if settings.secret_key is None:
                pending.unlink(missing_ok=True)
            raise
    resealed = (
        f"re-sealed {done.signing_keys} signing key(s) and {done.totp_secrets} second factor(s)"
    )
    if done.totp_unopened:
        print(
            f"youdai: warning: the second factor of {', '.join(done.totp_unopened)} opens with "
            "neither key and was left as it is: reset it (PATCH /v1/staff/ID with "
            '"reset_totp": true, or youdai reset-signing-keys)',
            file=sys.stderr,
        )
    if settings.secret_key is None:
        pending.replace(key_file)
        print(f"{resealed}; {key_file} holds the new key")
        return 0
    if args.new_key_file:
        print(f"{resealed}; set YOUDAI_SECRET_KEY to {args.new_key_file}'s key")
        return 0
    print(f"{resealed}; set YOUDAI_SECRET_KEY to the key below")
    print(new_text)
    return 0


def cmd_reset_signing_keys(settings: Settings, args: argparse.Namespace) -> int:
    """The lost-key procedure of deploy/RUNBOOK.md: what no key in reach opens is given
    up (signing keys removed, staff second factors reset), what opens is sealed under
    the new key, and a new signing key signs. Asks first, unless --yes."""
    from service.flows import secret_key as secret_key_flow
    from service.flows.keyring import Keyring
    from service.sealing import Sealer

    if args.new_secret_key_file:
        new_text, new_key = _read_key_file(args.new_secret_key_file, "--new-secret-key-file")
        new = Sealer(new_key)
        # The key the installation had until now, if one is still in reach: what it
        # opens is sealed again rather than given up.
        old = settings.sealer_in_reach()
    else:
        new_text, new, old = "", settings.sealer(), None
    keyring = Keyring(settings.token_ttl, new)

    async def look(dsn: str) -> secret_key_flow.ResetPlan:
        await migrate_database(dsn)
        async with connected(dsn) as conn:
            return await secret_key_flow.plan_reset(conn, new, old)

    async def apply(dsn: str) -> secret_key_flow.ResetPlan:
        async with connected(dsn) as conn:
            return await secret_key_flow.reset(conn, keyring, new, old)

    with database(settings) as dsn:
        plan = asyncio.run(look(dsn))
        _describe_reset(plan, done=False)
        if not plan.changes_anything and not plan.makes_a_new_key:
            print("nothing to do: every sealed secret opens with the new key")
        else:
            if not args.yes and not _confirmed("go ahead? [y/N] "):
                print("stopped: nothing was changed (--yes answers yes from a script)")
                return 1
            plan = asyncio.run(apply(dsn))
            _describe_reset(plan, done=True)
    _install_new_key(settings, args.new_secret_key_file, new_text)
    return 0


def _install_new_key(settings: Settings, given: str | None, new_text: str) -> None:
    """Put the new key where the installation keeps it (the data folder's key file), or
    say what to set where it comes from the environment."""
    from service.sealing import KEY_FILE_NAME

    key_file = settings.data_dir / KEY_FILE_NAME
    if (
        given
        and settings.secret_key is None
        and (settings.database_url is None or key_file.exists())
    ):
        pending = key_file.with_name(KEY_FILE_NAME + ".new")
        pending.write_text(new_text + "\n")
        pending.chmod(0o600)
        pending.replace(key_file)
        print(f"{key_file} holds the new key")
    elif given:
        print(f"set YOUDAI_SECRET_KEY to {given}'s key, then restart every process")
    else:
        print("restart every process (they must all have this YOUDAI_SECRET_KEY)")


def _confirmed(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def _describe_reset(plan: secret_key_flow.ResetPlan, *, done: bool) -> None:
    will = "" if done else "will be "
    if plan.keys_removed:
        print(
            f"signing key(s) {will}removed (they open with no key in reach): "
            f"{', '.join(plan.keys_removed)}; QR codes already shown stop scanning, and "
            "holders open their vouchers again for new ones"
        )
    if plan.keys_resealed:
        print(f"signing key(s) {will}sealed under the new key: {', '.join(plan.keys_resealed)}")
    if plan.new_active:
        print(f"new signing key {plan.new_active} signs from now on")
    elif not done and plan.makes_a_new_key:
        print("a new signing key, sealed under the new key, will sign from now on")
    if plan.totp_reset:
        print(
            f"second factor(s) {will}reset (they must sign in with their password and enrol "
            f"again): {', '.join(plan.totp_reset)}"
        )
    if plan.totp_resealed:
        print(f"second factor(s) {will}sealed under the new key: {', '.join(plan.totp_resealed)}")


@asynccontextmanager
async def _data_connection(settings: Settings, dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection for a command that reads, closed after: to a database that holds
    youdai's schema, else one line naming the database looked at and the settings that
    chose it."""
    from service.flows.housekeeping import holds_youdai_data

    try:
        async with connected(dsn) as conn:
            if not await holds_youdai_data(conn):
                raise ConfigError(
                    f"{where(settings, dsn)} holds no youdai data (no schema): check "
                    "DATABASE_URL and YOUDAI_DATA_DIR, or restore a backup into it first"
                )
            yield conn
    except NoSuchDatabase:
        raise ConfigError(f"{where(settings, dsn)} does not exist") from None


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when every counter and rollup equals its ledger rows, 1 otherwise."""
    from service.flows.housekeeping import RECONCILE_CHECKS, reconcile

    async def check(dsn: str) -> dict:
        async with _data_connection(settings, dsn) as conn:
            return await reconcile(conn)

    with database(settings, existing=True) as dsn:
        found = asyncio.run(check(dsn))
    for name in RECONCILE_CHECKS:
        rows = found.get(name, [])
        print(f"{name}: {'ok' if not rows else f'{len(rows)} mismatch(es)'}")
        for row in rows[:20]:
            print("  " + ", ".join(f"{key}={value}" for key, value in row.items()))
    return 1 if found else 0


def cmd_create_key(settings: Settings, args: argparse.Namespace) -> int:
    from service.domain.auth import Role
    from service.domain.errors import ApiError
    from service.flows import keys as keys_flow
    from service.flows import partners as partners_flow

    role = Role(args.role)
    if role is Role.ADMIN and args.partner:
        raise ConfigError("an admin key belongs to no partner: drop --partner")
    if role is not Role.ADMIN and not args.partner:
        raise ConfigError(f"a {role} key needs --partner ID")

    async def create(dsn: str) -> str:
        await migrate_database(dsn)
        async with connected(dsn) as conn:
            if args.partner:
                try:
                    await partners_flow.require(conn, args.partner)
                except ApiError:
                    raise ConfigError(f"no partner with id {args.partner}") from None
            row, secret = await keys_flow.issue(
                conn, role=role, partner_id=args.partner, label=args.label, actor=None
            )
        print(f"created {role} key {row.id}" + (f" for {args.partner}" if args.partner else ""))
        return secret

    with database(settings) as dsn:
        secret = asyncio.run(create(dsn))
    print(secret, flush=True)
    return 0


def cmd_create_staff(settings: Settings, args: argparse.Namespace) -> int:
    """The first bureau_admin comes from here (docs/staff.md): the setup link, valid 72 hours,
    is printed alone on the last line of stdout."""
    from service.api.staff import setup_url
    from service.domain.auth import StaffRole
    from service.domain.errors import ApiError
    from service.flows import staff as staff_flow

    if "@" not in args.email.strip(" @"):
        raise ConfigError(f"--email {args.email!r} is not an email address")

    async def create(dsn: str) -> str:
        await migrate_database(dsn)
        async with connected(dsn) as conn:
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
        account = invitation.account
        print(
            f"created {account.role} {account.email} ({account.id}); "
            f"the link below sets the password, once, within 72 hours"
        )
        return setup_url(settings.people_origin(), invitation.setup_token)

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
    from tqdm.contrib.logging import logging_redirect_tqdm

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
        # tqdm (maintained, no dependencies): disable=None draws only on a terminal. Log
        # lines meanwhile go through tqdm.write: above the bar, never into it.
        with (
            tqdm(total=job.rows, unit="row", desc=job.id, file=sys.stderr, disable=None) as bar,
            logging_redirect_tqdm(),
        ):
            return await imports_flow.run_job(
                dsn, conn, job, data, None, on_progress=lambda done: bar.update(done - bar.n)
            )

    try:
        with database(settings) as dsn:
            job = asyncio.run(run(dsn))
    except ApiError as error:  # another import is running
        print(f"youdai: {error.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # run_job marked the job failed; its transaction never was
        print("\nyoudai: stopped, nothing was imported", file=sys.stderr)
        return 130
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
        async with _data_connection(settings, dsn) as conn:
            return await reports_flow.discount_report(conn, None, period, group_by)

    with database(settings, existing=True) as dsn:
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


def cmd_export_ledger(settings: Settings, args: argparse.Namespace) -> int:
    from service.flows import ledger

    with database(settings) as dsn, open(args.file, "w", encoding="utf-8", newline="\n") as out:
        count = asyncio.run(ledger.export(dsn, lambda leaf: out.write(leaf + "\n")))
    print(f"wrote {count} entries to {args.file}")
    return 0


def cmd_verify_statement(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 and `statement verified` with the totals, or 1 and the first difference.
    Reads three files; opens no database and no connection."""
    import json

    from service.domain.statement import verify

    try:
        with open(args.statement, encoding="utf-8") as file:
            statement = file.read().strip()
        with open(args.jwks, encoding="utf-8") as file:
            jwks = file.read()
        if statement.startswith("{"):  # the API's answer as it came: {"statement": "…"}
            statement = json.loads(statement)["statement"]
        with open(args.entries, encoding="utf-8") as entries:
            verdict = verify(statement, jwks, entries)
    except (OSError, ValueError, KeyError) as error:
        return _fail(f"cannot read the files: {error}")
    print(verdict.message if verdict.verified else f"statement NOT verified: {verdict.message}")
    return 0 if verdict.verified else 1


def cmd_verify_ledger(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when the stored log holds against every checkpoint, 1 with what differs."""
    from service.flows import ledger

    with database(settings) as dsn:
        verdict = asyncio.run(ledger.verify_stored_log(dsn))
    if verdict.difference is not None:
        print(f"ledger NOT verified: {verdict.difference}")
        return 1
    print(f"ledger verified: {verdict.size} entries, {verdict.checkpoints} checkpoints")
    return 0


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    """One snapshot: every redemption committed before it started is in the file."""
    from pathlib import Path

    from service import backup

    async def check(dsn: str) -> None:
        async with _data_connection(settings, dsn):
            pass  # it holds youdai data

    with database(settings, existing=True) as dsn:
        asyncio.run(check(dsn))
        found = asyncio.run(backup.backup(dsn, Path(args.file)))
    print(f"wrote {args.file}: {found.describe()}", flush=True)
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Refuses a database that holds any table; `youdai serve` migrates it afterwards.
    The last lines say what the restored service needs that no backup holds: the
    key-encryption key that sealed its signing keys (deploy/RUNBOOK.md); a warning when
    the key in reach here does not open them."""
    from pathlib import Path

    from service import backup
    from service.flows import secret_key as secret_key_flow

    sealer = settings.sealer_in_reach()

    async def sealed(dsn: str) -> secret_key_flow.SealedCount:
        async with connected(dsn) as conn:
            return await secret_key_flow.count_sealed(conn, sealer)

    with database(settings) as dsn:
        found = asyncio.run(backup.restore(dsn, Path(args.file)))
        print(f"restored {args.file}: {found.describe()}", flush=True)
        count = asyncio.run(sealed(dsn))
    _say_what_the_restored_service_needs(settings, count, sealer is not None)
    return 0


def _say_what_the_restored_service_needs(
    settings: Settings, count: secret_key_flow.SealedCount, key_in_reach: bool
) -> None:
    from service.sealing import KEY_FILE_NAME

    if count.signing_keys == 0 and count.totp_secrets == 0:
        print("it holds no sealed secret: the service makes its signing key at its first start")
        return
    print(
        f"the restored service needs the YOUDAI_SECRET_KEY that sealed its "
        f"{count.signing_keys} signing key(s) and {count.totp_secrets} second factor(s): no "
        "backup holds it (deploy/RUNBOOK.md, The secrets a restored database needs)",
        flush=True,
    )
    given = (
        "YOUDAI_SECRET_KEY"
        if settings.secret_key is not None
        else str(settings.data_dir / KEY_FILE_NAME)
    )
    if not key_in_reach:
        print(
            f"youdai: warning: no key is in reach here (YOUDAI_SECRET_KEY is unset and there "
            f"is no {given}): the service will not start until it has the key that sealed "
            "them; if that key is lost, see youdai reset-signing-keys",
            file=sys.stderr,
        )
    elif count.signing_keys_opening < count.signing_keys:
        print(
            f"youdai: warning: {count.signing_keys - count.signing_keys_opening} of the "
            f"{count.signing_keys} signing key(s) do not open with {given}: the service will "
            "not start with it; give it the key that sealed them (or, if that key is lost, "
            "see youdai reset-signing-keys)",
            file=sys.stderr,
        )
    elif count.totp_opening < count.totp_secrets:
        print(
            f"youdai: warning: {count.totp_secrets - count.totp_opening} second factor(s) do "
            f"not open with {given}: those people cannot sign in until it is reset",
            file=sys.stderr,
        )
    else:
        print(f"{given} opens them all", flush=True)


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
