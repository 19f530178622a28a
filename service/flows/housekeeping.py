"""Forgetting what no longer counts: Idempotency-Keys past their retention, and the
sign-in and code-guessing counters whose windows and locks are over."""

from __future__ import annotations

import asyncpg

from service.db import holder_sessions as sessions_db
from service.db import redemptions as redemptions_db
from service.db import staff as staff_db
from service.db import voucher_codes as voucher_codes_db
from service.domain.staff import ATTEMPT_WINDOW
from service.flows import throttle


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
