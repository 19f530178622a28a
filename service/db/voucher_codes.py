"""SQL for voucher codes (docs/product.md) and the scanners' unknown-code counter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import asyncpg


@dataclass(frozen=True, slots=True)
class CodeLookup:
    """What one scanner's code resolves to (with its token's `iat` and `exp`), and how
    many unknown codes the key, and all its partner's keys, sent this minute."""

    voucher_id: str | None
    partner_id: str | None
    issued_at: datetime | None
    expires_at: datetime | None
    misses: int
    partner_misses: int


async def store(
    conn: asyncpg.Connection,
    voucher_id: str,
    code_hash: bytes,
    issued: datetime,
    expires: datetime,
) -> bool:
    """The voucher's one code from now on (its earlier code dies), living from `issued` to
    `expires` as its token does; False if another voucher holds the same code (the caller
    draws another)."""
    try:
        await conn.execute(
            """
            -- docs/product.md: at most one live code per voucher (one row per voucher, replaced).
            INSERT INTO voucher_codes (voucher_id, code_hash, issued_at, expires_at)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (voucher_id) DO UPDATE SET code_hash = $2, issued_at = $3, expires_at = $4
            """,
            voucher_id,
            code_hash,
            issued,
            expires,
        )
    except asyncpg.UniqueViolationError:
        return False
    return True


async def lookup(
    conn: asyncpg.Connection,
    code_hash: bytes,
    scanner_key_id: str,
    partner_id: str,
    minute: datetime,
) -> CodeLookup:
    """One read: the code's voucher (if any), and the unknown codes of the key and of its
    partner this minute."""
    row = await conn.fetchrow(
        """
        SELECT c.voucher_id, v.partner_id, c.issued_at, c.expires_at,
               (SELECT m.misses FROM scanner_code_misses m
                WHERE m.scanner_key_id = $2 AND m.minute = $4) AS misses,
               (SELECT p.misses FROM partner_code_misses p
                WHERE p.partner_id = $3 AND p.minute = $4) AS partner_misses
        FROM (SELECT 1) one
        LEFT JOIN voucher_codes c ON c.code_hash = $1
        LEFT JOIN vouchers v ON v.id = c.voucher_id
        """,
        code_hash,
        scanner_key_id,
        partner_id,
        minute,
    )
    return CodeLookup(
        row["voucher_id"],
        row["partner_id"],
        row["issued_at"],
        row["expires_at"],
        row["misses"] or 0,
        row["partner_misses"] or 0,
    )


async def count_miss(
    conn: asyncpg.Connection, scanner_key_id: str, partner_id: str, minute: datetime
) -> None:
    """One more unknown code from this key, and so from its partner, in this minute."""
    await conn.execute(
        """
        -- docs/product.md: unknown codes are counted in PostgreSQL, per key and per partner and
        -- minute, for every replica.
        WITH by_key AS (
            INSERT INTO scanner_code_misses AS m (scanner_key_id, minute, misses)
            VALUES ($1, $3, 1)
            ON CONFLICT (scanner_key_id, minute) DO UPDATE SET misses = m.misses + 1
        )
        INSERT INTO partner_code_misses AS p (partner_id, minute, misses) VALUES ($2, $3, 1)
        ON CONFLICT (partner_id, minute) DO UPDATE SET misses = p.misses + 1
        """,
        scanner_key_id,
        partner_id,
        minute,
    )


async def forget_old_misses(conn: asyncpg.Connection) -> int:
    """Housekeeping: minutes that are over count for nothing."""
    status = await conn.execute(
        """
        WITH by_partner AS (
            DELETE FROM partner_code_misses WHERE minute < date_trunc('minute', now())
        )
        DELETE FROM scanner_code_misses WHERE minute < date_trunc('minute', now())
        """
    )
    return int(status.split()[-1])


async def live_expiry(
    conn: asyncpg.Connection, voucher_id: str, code_hash: bytes
) -> datetime | None:
    """The expiry of the voucher's code if it is `code_hash` and still valid."""
    return cast(
        datetime | None,
        await conn.fetchval(
            "SELECT expires_at FROM voucher_codes "
            "WHERE voucher_id = $1 AND code_hash = $2 AND expires_at > now()",
            voucher_id,
            code_hash,
        ),
    )
