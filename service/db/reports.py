"""SQL for the reports. They read the rollups and the few ledger rows not folded into
them yet, so they cost the same at ten thousand redemptions as at ten million, and are
exact at every instant.

A period is read as whole months from discount_rollup_monthly and the days of a
partial first or last month from discount_rollup (see migration 0007). The sequencer
folds ledger rows into both in batches, in the transaction that moves its watermark
(`fold`, migration 0021); the rows above the watermark are added as they are
(`_UNFOLDED`). The watermark and the rows are read in one snapshot (the caller's
transaction): a row is counted once, folded or not. `youdai reconcile` compares the
rollups with the rows folded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from service.db.ledger import Watermark, bounds
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

#: The ledger rows above the sequencer's watermark, as rollup cells of one row each: what
#: the rollups do not hold yet. Each table is read from its own bound, $9, $10 for
#: redemptions and $11, $12 for reversals (db/ledger.py: `bounds`), along its (xact_id,
#: id) index: a few rows, whatever its size. The bounds are parameters, not a subquery on
#: the watermark: a bound the planner cannot see counts as a third of the table, and over
#: ten million redemptions it then chose a parallel scan of all of them (a second of
#: PostgreSQL's CPU, at the till's priority, for every report).
_UNFOLDED = """
    SELECT r.partner_id, r.offer_id, r.holder_category, r.local_day,
           1 AS redemptions, 0 AS reversals, r.purchase_amount AS purchase_total,
           r.discount_amount AS discount_total, (r.offline_at IS NOT NULL)::int AS offline,
           (r.conflict IS NOT NULL)::int AS conflicts
    FROM redemptions r
    WHERE r.xact_id >= $9 AND (r.xact_id, r.id) > ($9, $10)
    UNION ALL
    SELECT x.partner_id, x.offer_id, x.holder_category, x.local_day,
           0, 1, -x.purchase_amount, -x.discount_amount, 0, 0
    FROM reversals x
    WHERE x.xact_id >= $11 AND (x.xact_id, x.id) > ($11, $12)
"""

#: The rollups' cells of the period ($1-$6: `Period.split`), of one partner or offer.
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

#: ... and the ledger rows not folded yet, for a report as of now (not the log's figures).
_CELLS_UNFOLDED = f"""{_CELLS}
    UNION ALL
    SELECT date_trunc('month', local_day)::date, partner_id, offer_id, holder_category,
           redemptions, reversals, purchase_total, discount_total, offline, conflicts
    FROM ({_UNFOLDED}) e
    WHERE local_day >= $1 AND local_day < $6
      AND ($7::text IS NULL OR partner_id = $7) AND ($8::text IS NULL OR offer_id = $8)
"""

_SUMS = ", ".join(f"coalesce(sum({m}), 0)::bigint AS {m}" for m in MEASURES)


def _query(group_by: Sequence[str], unfolded: bool) -> str:
    cells = _CELLS_UNFOLDED if unfolded else _CELLS
    if not group_by:
        return f"WITH cells AS ({cells}) SELECT {_SUMS} FROM cells"
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
        WITH cells AS ({cells}),
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
    unfolded_after: Watermark | None = None,
) -> list[dict[str, Any]]:
    """One row per group that had any redemption or reversal in the period (rule 4:
    completed minus reversed, each counted on its own local day): what the rollups hold
    (the entries of the log, for the signed statement), and with `unfolded_after` the
    ledger rows after that watermark too, read in the same snapshot as it was."""
    split = period.split()
    unfolded = () if unfolded_after is None else bounds(unfolded_after)
    records = await conn.fetch(
        _query(group_by, unfolded_after is not None),
        *split.head,
        *split.months,
        *split.tail,
        partner_id,
        offer_id,
        *unfolded,
    )
    return [_row(record, group_by) for record in records]


_FOLD = """
WITH entries AS (
    SELECT partner_id, offer_id, holder_category, local_day, 1 AS redemptions,
           0 AS reversals, purchase_amount AS purchase, discount_amount AS discount,
           (offline_at IS NOT NULL)::int AS offline, (conflict IS NOT NULL)::int AS conflicts
    FROM redemptions WHERE id = ANY($1::text[])
    UNION ALL
    -- A reversal counts on the day it was made, taking its amounts back.
    SELECT partner_id, offer_id, holder_category, local_day, 0, 1,
           -purchase_amount, -discount_amount, 0, 0
    FROM reversals WHERE id = ANY($2::text[])
), days AS (
    SELECT partner_id, offer_id, holder_category, local_day AS day,
           sum(redemptions) AS redemptions, sum(reversals) AS reversals,
           sum(purchase) AS purchase_total, sum(discount) AS discount_total,
           sum(offline) AS offline, sum(conflicts) AS conflicts
    FROM entries GROUP BY 1, 2, 3, 4
), daily AS (
    INSERT INTO discount_rollup AS t
        (partner_id, offer_id, holder_category, day,
         redemptions, reversals, purchase_total, discount_total, offline, conflicts)
    SELECT * FROM days
    ON CONFLICT (day, partner_id, offer_id, holder_category) DO UPDATE
    SET redemptions = t.redemptions + EXCLUDED.redemptions,
        reversals = t.reversals + EXCLUDED.reversals,
        purchase_total = t.purchase_total + EXCLUDED.purchase_total,
        discount_total = t.discount_total + EXCLUDED.discount_total,
        offline = t.offline + EXCLUDED.offline, conflicts = t.conflicts + EXCLUDED.conflicts
)
INSERT INTO discount_rollup_monthly AS m
    (month, partner_id, offer_id, holder_category,
     redemptions, reversals, purchase_total, discount_total, offline, conflicts)
SELECT date_trunc('month', day)::date, partner_id, offer_id, holder_category,
       sum(redemptions), sum(reversals), sum(purchase_total), sum(discount_total),
       sum(offline), sum(conflicts)
FROM days GROUP BY 1, 2, 3, 4
ON CONFLICT (month, partner_id, offer_id, holder_category) DO UPDATE
SET redemptions = m.redemptions + EXCLUDED.redemptions,
    reversals = m.reversals + EXCLUDED.reversals,
    purchase_total = m.purchase_total + EXCLUDED.purchase_total,
    discount_total = m.discount_total + EXCLUDED.discount_total,
    offline = m.offline + EXCLUDED.offline, conflicts = m.conflicts + EXCLUDED.conflicts
"""


async def fold(
    conn: asyncpg.Connection, redemption_ids: Sequence[str], reversal_ids: Sequence[str]
) -> None:
    """Rule 4: add these ledger rows to the daily and monthly rollups, in the caller's
    transaction, which also moves the watermark past them (service/flows/ledger.py)."""
    if redemption_ids or reversal_ids:
        await conn.execute(_FOLD, list(redemption_ids), list(reversal_ids))


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
