"""Keeping the database in shape: its schema brought up to date (signing keys sealed on
the way), and what no longer counts forgotten: Idempotency-Keys past their retention,
the sign-in and code-guessing counters whose windows and locks are over."""

from __future__ import annotations

import asyncpg

from service.config import ConfigError
from service.db import holder_sessions as sessions_db
from service.db import redemptions as redemptions_db
from service.db import staff as staff_db
from service.db import voucher_codes as voucher_codes_db
from service.db.connection import connected
from service.db.migrate import has_schema, migrate
from service.db.reconcile import CHECKS, mismatches
from service.domain.staff import ATTEMPT_WINDOW
from service.flows import throttle
from service.flows.keyring import SecretKeyMismatch, seal_plain_keys
from service.sealing import Sealer


async def forget_what_no_longer_counts(pool: asyncpg.Pool) -> dict[str, int]:
    """Delete what expired; the rows removed, by kind. Safe in every process at once."""
    async with pool.acquire() as conn:
        return {
            "idempotency_keys": await redemptions_db.purge_idempotency_keys(conn),
            "unknown_card_attempts": await sessions_db.forget_unknown_card_attempts(conn),
            "sign_in_address_failures": await throttle.forget_old_failures(conn),
            "unknown_email_attempts": await staff_db.forget_unknown_email_attempts(
                conn, ATTEMPT_WINDOW
            ),
            "scanner_code_misses": await voucher_codes_db.forget_old_misses(conn),
        }


async def migrate_database(dsn: str, sealer: Sealer | None = None) -> list[str]:
    """Migrate; with a `sealer`, also seal signing keys left in plain PEM and check that
    the secret key opens the sealed ones (a wrong key is one ConfigError line). Without
    one, the schema alone: migrating needs no key."""
    async with connected(dsn) as conn:
        applied = await migrate(conn)
        if sealer is not None:
            try:
                await seal_plain_keys(conn, sealer)
            except SecretKeyMismatch as error:
                raise ConfigError(str(error)) from None
        return applied


async def holds_youdai_data(conn: asyncpg.Connection) -> bool:
    """Whether the database holds youdai's schema (a command that reads needs it)."""
    return await has_schema(conn)


#: What `youdai reconcile` compares, in the order it prints them.
RECONCILE_CHECKS = CHECKS


async def reconcile(conn: asyncpg.Connection) -> dict[str, list[asyncpg.Record]]:
    """Every counter and rollup that differs from its ledger rows, by check (rule 1)."""
    return await mismatches(conn)
