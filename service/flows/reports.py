"""The exact discount totals and the programme's headline figures (rule 4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.db import ledger as ledger_db
from service.db import reports as reports_db
from service.db.connection import connected
from service.domain.auth import Principal
from service.domain.partners import CATEGORIES as PARTNER_CATEGORIES
from service.domain.pricing import CURRENCY
from service.domain.reports import MEASURES, Period, totals
from service.flows.database import Database, connection


async def discount_report(
    db: Database,
    caller: Principal | None,
    period: Period,
    group_by: Sequence[str],
    *,
    partner_id: str | None = None,
    offer_id: str | None = None,
    unfolded: bool = True,
) -> dict[str, Any]:
    """The report (DiscountReportSchema's fields). A partner caller sees only its own
    partner's rows, whatever `partner_id` or `offer_id` it asks for; None is the system
    (the CLI), which sees all. Without `unfolded`, only what the rollups hold (the
    log's entries)."""
    if caller is not None:
        partner_id = caller.partner_filter(partner_id)
    async with connection(db) as conn, _one_snapshot(conn):
        rows = await reports_db.discount_rows(
            conn,
            period,
            group_by,
            partner_id=partner_id,
            offer_id=offer_id,
            unfolded_after=await ledger_db.watermark(conn) if unfolded else None,
        )
    return {
        "currency": CURRENCY,
        "from_": period.first,
        "to": period.last,
        "group_by": list(group_by),
        "rows": rows,
        "totals": totals(rows) if group_by else {m: rows[0][m] for m in MEASURES},
    }


def discount_report_apart(
    dsn: str,
    caller: Principal | None,
    period: Period,
    group_by: Sequence[str],
    *,
    partner_id: str | None = None,
    offer_id: str | None = None,
) -> dict[str, Any]:
    """discount_report on a connection of its own, for a background process making a report
    file (service.background): a year's rows are decoded and handed on there, not in the
    server's event loop, where every till's request would wait behind them."""

    async def read() -> dict[str, Any]:
        async with connected(dsn) as conn:
            return await discount_report(
                conn, caller, period, group_by, partner_id=partner_id, offer_id=offer_id
            )

    return asyncio.run(read())


@asynccontextmanager
async def _one_snapshot(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """The watermark and the rows after it read in one snapshot: the caller's transaction
    if it has one (a repeatable-read one: `summary`, the statement), else a read-only
    repeatable-read one of their own. In two snapshots, a fold committed in between would
    count its rows twice."""
    if conn.is_in_transaction():
        yield
        return
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        yield


async def summary(db: Database, period: Period, tz: ZoneInfo) -> dict[str, Any]:
    """The programme's headline for a period (SummarySchema's fields); its totals are
    the discount report's, read in the same snapshot."""
    async with connection(db) as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return await summary_in_snapshot(conn, period, tz)


async def summary_in_snapshot(
    conn: asyncpg.Connection, period: Period, tz: ZoneInfo, *, unfolded: bool = True
) -> dict[str, Any]:
    """`summary`, in the caller's repeatable-read transaction."""
    start, end = period.instants(tz)
    counts, by_category = await reports_db.summary_counts(conn, start, end)
    report = await discount_report(conn, None, period, (), unfolded=unfolded)
    categories = {
        category: by_category.get(category, {"enrolled": 0, "active": 0})
        for category in PARTNER_CATEGORIES
    }
    return {
        "from_": period.first,
        "to": period.last,
        "currency": CURRENCY,
        "partners": {
            "enrolled": sum(c["enrolled"] for c in categories.values()),
            "active": sum(c["active"] for c in categories.values()),
            "by_category": categories,
        },
        "holders": counts["holders"],
        "vouchers_issued": counts["vouchers_issued"],
        "redemptions": report["totals"]["redemptions"],
        "reversals": report["totals"]["reversals"],
        "offline": report["totals"]["offline"],
        "conflicts": report["totals"]["conflicts"],
        "refusals": counts["refusals"],
        "discount_total": report["totals"]["discount_total"],
    }
