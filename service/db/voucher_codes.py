"""SQL for voucher codes (SPEC 8) and the scanners' unknown-code counter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class CodeLookup:
    """What one scanner's code resolves to, and how many unknown codes it sent this minute."""

    voucher_id: str | None
    partner_id: str | None
    expires_at: datetime | None
    misses: int


async def store(
    conn: asyncpg.Connection, voucher_id: str, code_hash: bytes, expires: datetime
) -> bool:
    """The voucher's one code from now on (its earlier code dies); False if another
    voucher holds the same code (the caller draws another)."""
    try:
        await conn.execute(
            """
            -- SPEC 8: at most one live code per voucher (one row per voucher, replaced).
            INSERT INTO voucher_codes (voucher_id, code_hash, expires_at) VALUES ($1, $2, $3)
            ON CONFLICT (voucher_id) DO UPDATE SET code_hash = $2, expires_at = $3
            """,
            voucher_id,
            code_hash,
            expires,
        )
    except asyncpg.UniqueViolationError:
        return False
    return True


async def lookup(
    conn: asyncpg.Connection, code_hash: bytes, scanner_key_id: str, minute: datetime
) -> CodeLookup:
    """One read: the code's voucher (if any) and the key's unknown codes this minute."""
    row = await conn.fetchrow(
        """
        SELECT c.voucher_id, v.partner_id, c.expires_at,
               (SELECT m.misses FROM scanner_code_misses m
                WHERE m.scanner_key_id = $2 AND m.minute = $3) AS misses
        FROM (SELECT 1) one
        LEFT JOIN voucher_codes c ON c.code_hash = $1
        LEFT JOIN vouchers v ON v.id = c.voucher_id
        """,
        code_hash,
        scanner_key_id,
        minute,
    )
    return CodeLookup(row["voucher_id"], row["partner_id"], row["expires_at"], row["misses"] or 0)


async def count_miss(conn: asyncpg.Connection, scanner_key_id: str, minute: datetime) -> int:
    """One more unknown code from this key in this minute; how many now."""
    return await conn.fetchval(
        """
        -- SPEC 8: unknown codes are counted in PostgreSQL, per key and minute, for every replica.
        INSERT INTO scanner_code_misses AS m (scanner_key_id, minute, misses) VALUES ($1, $2, 1)
        ON CONFLICT (scanner_key_id, minute) DO UPDATE SET misses = m.misses + 1
        RETURNING misses
        """,
        scanner_key_id,
        minute,
    )


async def forget_old_misses(conn: asyncpg.Connection) -> int:
    """Housekeeping: minutes that are over count for nothing."""
    status = await conn.execute(
        "DELETE FROM scanner_code_misses WHERE minute < date_trunc('minute', now())"
    )
    return int(status.split()[-1])


async def live_expiry(
    conn: asyncpg.Connection, voucher_id: str, code_hash: bytes
) -> datetime | None:
    """The expiry of the voucher's code if it is `code_hash` and still valid."""
    return await conn.fetchval(
        "SELECT expires_at FROM voucher_codes "
        "WHERE voucher_id = $1 AND code_hash = $2 AND expires_at > now()",
        voucher_id,
        code_hash,
    )
