"""SQL for the reports. They read the rollups, never the ledger, so they cost the same
at ten thousand redemptions as at ten million.

A period is read as whole months from discount_rollup_monthly and the days of a
partial first or last month from discount_rollup (see migration 0007). Both are kept
in the transaction of each ledger row; `youdai reconcile` compares them with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.reports import GROUP_COLUMNS, MEASURES, Period, month_label

#: grouping -> the rollup column it groups by (constants: the only text put into SQL).
_KEYS = {
    "partner": "partner_id",
    "offer": "offer_id",
    "category": "holder_category",
    "month": "month",
}
#: grouping -> how its rows sort: names first, for people, by code point so that every
#: server sorts alike; ids make the order total.
_ORDER = {
    "partner": 'p.name COLLATE "C", g.partner_id',
    "offer": 'o.title COLLATE "C", g.offer_id',
    "category": "g.holder_category",
    "month": "g.month",
}

_CELLS = """
    SELECT month, partner_id, offer_id, holder_category,
           redemptions, reversals, purchase_total, discount_total, offline, conflicts
    FROM discount_rollup_monthly
    WHERE month >= $3 AND month < $4
      AND ($7::text IS NULL OR partner_id = $7) AND ($8::text IS NULL OR offer_id = $8)
    UNION ALL
    SELECT date_trunc('month', day)::date, partner_id, offer_id, holder_category,
           redemptions, reversals, purchase_total, discount_total, offline, conflicts
    FROM discount_rollup
    WHERE day >= $1 AND day < $2
      AND ($7::text IS NULL OR partner_id = $7) AND ($8::text IS NULL OR offer_id = $8)
    UNION ALL
    SELECT date_trunc('month', day)::date, partner_id, offer_id, holder_category,
           redemptions, reversals, purchase_total, discount_total, offline, conflicts
    FROM discount_rollup
    WHERE day >= $5 AND day < $6
      AND ($7::text IS NULL OR partner_id = $7) AND ($8::text IS NULL OR offer_id = $8)
"""

_SUMS = ", ".join(f"coalesce(sum({m}), 0)::bigint AS {m}" for m in MEASURES)


def _query(group_by: Sequence[str]) -> str:
    if not group_by:
        return f"WITH cells AS ({_CELLS}) SELECT {_SUMS} FROM cells"
    keys = ", ".join(_KEYS[name] for name in group_by)
    joins = ""
    names = ""
    if "partner" in group_by:
        joins += " LEFT JOIN partners p ON p.id = g.partner_id"
        names += ", p.name AS partner_name, p.region AS partner_region"
    if "offer" in group_by:
        joins += " LEFT JOIN offers o ON o.id = g.offer_id"
        names += ", o.title AS offer_title"
    order = ", ".join(_ORDER[name] for name in group_by)
    return f"""
        WITH cells AS ({_CELLS}),
        g AS (SELECT {keys}, {_SUMS} FROM cells GROUP BY {keys})
        SELECT g.*{names} FROM g{joins}
        ORDER BY {order}
    """


def _row(record: asyncpg.Record, group_by: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in group_by:
        for column in GROUP_COLUMNS[name]:
            if column == "category":
                row[column] = record["holder_category"]
            elif column == "month":
                row[column] = month_label(record["month"])
            else:
                row[column] = record[column]
    for measure in MEASURES:
        row[measure] = record[measure]
    return row


async def discount_rows(
    conn: asyncpg.Connection,
    period: Period,
    group_by: Sequence[str],
    *,
    partner_id: str | None = None,
    offer_id: str | None = None,
) -> list[dict[str, Any]]:
    """One row per group that had any redemption or reversal in the period (rule 4:
    completed minus reversed, each counted on its own local day)."""
    split = period.split()
    records = await conn.fetch(
        _query(group_by),
        *split.head,
        *split.months,
        *split.tail,
        partner_id,
        offer_id,
    )
    return [_row(record, group_by) for record in records]


_SUMMARY_COUNTS = """
    SELECT (SELECT count(*) FROM holders WHERE created_at < $2) AS holders,
           (SELECT count(*) FROM vouchers
            WHERE created_at >= $1 AND created_at < $2) AS vouchers_issued,
           (SELECT count(*) FROM redemption_refusals
            WHERE created_at >= $1 AND created_at < $2) AS refusals
"""

_PARTNERS_BY_CATEGORY = """
    SELECT category, count(*) AS enrolled, count(*) FILTER (WHERE status = 'active') AS active
    FROM partners WHERE created_at < $1
    GROUP BY category
"""


async def summary_counts(
    conn: asyncpg.Connection, start: datetime, end: datetime
) -> tuple[asyncpg.Record, dict[str, dict[str, int]]]:
    """Holders enrolled before `end`, vouchers and refusals in [start, end), and the
    partners enrolled before `end` by category (enrolled, of them active now)."""
    counts = await conn.fetchrow(_SUMMARY_COUNTS, start, end)
    by_category = {
        record["category"]: {"enrolled": record["enrolled"], "active": record["active"]}
        for record in await conn.fetch(_PARTNERS_BY_CATEGORY, end)
    }
    return counts, by_category
