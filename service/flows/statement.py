"""The signed statement of a period (docs/ledger.md): the programme's figures, exactly those of
the summary and the discounts report, with the log that holds every entry behind them.

Its figures and its log are read in one snapshot: the statement first waits for the
sequencer's lock (so no round is half seen), appends whatever is still queued, signs a
checkpoint of the log as it then is, and reads the reports in the same repeatable-read
transaction — so every redemption the figures count is an entry of the log it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.config import Settings
from service.db import ledger as ledger_db
from service.domain.errors import ApiError
from service.domain.language import Said
from service.domain.ledger import b64, rfc3339_utc, sign
from service.domain.reports import MEASURES, Period
from service.domain.statement import STATEMENT_TYP
from service.flows import reports as reports_flow
from service.flows.keyring import Keyring
from service.flows.ledger import BATCH, append_next, sign_if_due


@dataclass(frozen=True, slots=True)
class _Read:
    """What a statement says, read in one snapshot with the log it names."""

    headline: dict[str, Any]
    categories: dict[str, Any]
    partners: dict[str, Any]
    size: int
    root: bytes | None
    first_index: int | None
    last_index: int | None


async def statement(
    pool: asyncpg.Pool, keyring: Keyring, settings: Settings, period: Period, now: datetime
) -> str:
    """The statement of `period` as a compact JWS; `final` once the period is over."""
    tz = settings.timezone
    starts_at, ends_before = period.instants(tz)
    async with pool.acquire() as conn:
        await ledger_db.lock_sequencer(conn)
        try:
            # Read before the snapshot below is taken: every ledger row under it is seen.
            below = await ledger_db.horizon(conn)
            async with conn.transaction(isolation="repeatable_read"):
                read = await _read(conn, keyring, settings, period, now, below)
                key = await keyring.signing_key(conn)
        finally:
            await ledger_db.unlock_sequencer(conn)
    headline, categories = read.headline, read.categories
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "period": {
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "timezone": tz.key,
            "starts_at": rfc3339_utc(starts_at),
            "ends_before": rfc3339_utc(ends_before),
        },
        "final": ends_before <= now,
        "generated_at": rfc3339_utc(now),
        "currency": headline["currency"],
        "partners": headline["partners"],
        "holders": headline["holders"],
        "vouchers_issued": headline["vouchers_issued"],
        **{measure: categories["totals"][measure] for measure in MEASURES},
        "by_holder_category": {
            row["category"]: {m: row[m] for m in MEASURES} for row in categories["rows"]
        },
        "by_partner": [
            {"partner_id": row["partner_id"], "name": row["partner_name"]}
            | {m: row[m] for m in MEASURES}
            for row in read.partners["rows"]
        ],
        "log": {
            "size": read.size,
            "root": b64(read.root) if read.root is not None else None,
            "first_index": read.first_index,
            "last_index": read.last_index,
        },
    }
    return sign(key, claims, STATEMENT_TYP)


async def _read(
    conn: asyncpg.Connection,
    keyring: Keyring,
    settings: Settings,
    period: Period,
    now: datetime,
    below: int,
) -> _Read:
    """In the caller's snapshot, the sequencer held: the log brought up to date and signed,
    then the figures of the period and the log's span for it."""
    tz = settings.timezone
    starts_at, ends_before = period.instants(tz)
    state = await ledger_db.state(conn)
    if state.halted_reason is not None:
        raise ApiError(
            "conflict",
            Said(
                "The stored log no longer proves itself consistent with what was "
                f"signed ({state.halted_reason}): no statement is signed",
                f"账本已与此前签名的内容不一致（{state.halted_reason}），不能签发声明",
            ),
        )
    size = state.size
    while True:
        appended, size = await append_next(conn, size, BATCH, below)
        if not appended:
            break
    checkpoint, consistent = await sign_if_due(conn, keyring, settings, size, now, at_once=True)
    if not consistent:
        raise ApiError(
            "conflict",
            Said(
                "The stored log no longer proves itself consistent", "账本已与此前签名的内容不一致"
            ),
        )
    latest = checkpoint or await ledger_db.latest_checkpoint(conn)
    first_index, last_index = await ledger_db.index_span(conn, starts_at, ends_before)
    # The figures of the log's entries: what the rollups hold now (a ledger row that
    # committed above the horizon is in neither).
    return _Read(
        headline=await reports_flow.summary_in_snapshot(conn, period, tz, unfolded=False),
        categories=await reports_flow.discount_report(
            conn, None, period, ("category",), unfolded=False
        ),
        partners=await reports_flow.discount_report(
            conn, None, period, ("partner",), unfolded=False
        ),
        size=size,
        root=latest.root if latest is not None else None,
        first_index=first_index,
        last_index=last_index,
    )
