"""Reconciliation: every counter and rollup recomputed from the ledger and compared.

The counters are kept in the same transaction as each ledger row, and the rollups in the
transaction that moves the sequencer's watermark past it, so this should always find
nothing; it exists to prove that (tests, `youdai reconcile`, an
auditor's question) and to find out at once if anyone edits the tables by hand.
"""

from __future__ import annotations

import asyncpg

from service.db.ledger import ENTRY_QUARTER, WATERMARK

#: name -> a query returning the rows where a counter disagrees with the ledger.
CHECKS = {
    # Offline conflicts count in the totals, and apart (conflict_*) as well.
    "offer counters": """
        SELECT o.id, o.redeemed_count, o.spent, o.conflict_count, o.conflict_spent,
               coalesce(l.uses, 0) AS ledger_uses, coalesce(l.cost, 0) AS ledger_spent,
               coalesce(l.conflicts, 0) AS ledger_conflicts,
               coalesce(l.conflict_cost, 0) AS ledger_conflict_spent
        FROM offers o LEFT JOIN (
            SELECT r.offer_id, count(*) AS uses, sum(r.budget_cost) AS cost,
                   count(r.conflict) AS conflicts,
                   coalesce(sum(r.budget_cost) FILTER (WHERE r.conflict IS NOT NULL), 0)
                       AS conflict_cost
            FROM redemptions r LEFT JOIN reversals x ON x.redemption_id = r.id
            WHERE x.id IS NULL GROUP BY r.offer_id
        ) l ON l.offer_id = o.id
        WHERE o.redeemed_count <> coalesce(l.uses, 0) OR o.spent <> coalesce(l.cost, 0)
           OR o.conflict_count <> coalesce(l.conflicts, 0)
           OR o.conflict_spent <> coalesce(l.conflict_cost, 0)
    """,
    # Uses past the allowance (offline conflicts) are counted in uses_over, never below 0.
    "voucher uses": """
        SELECT v.id, v.uses_left, v.uses_over, v.uses_total, coalesce(l.uses, 0) AS ledger_uses
        FROM vouchers v LEFT JOIN (
            SELECT r.voucher_id, count(*) AS uses
            FROM redemptions r LEFT JOIN reversals x ON x.redemption_id = r.id
            WHERE x.id IS NULL GROUP BY r.voucher_id
        ) l ON l.voucher_id = v.id
        WHERE v.uses_left <> greatest(v.uses_total - coalesce(l.uses, 0), 0)
           OR v.uses_over <> greatest(coalesce(l.uses, 0) - v.uses_total, 0)
    """,
    # Rule 1: the redemptions recorded without a conflict (every online one) never
    # exceed a limit. Only an offline redemption, recorded with its conflict because
    # the discount was already given, may go past one (docs/rules.md).
    "limits held without conflicts": """
        WITH kept AS (
            SELECT r.* FROM redemptions r LEFT JOIN reversals x ON x.redemption_id = r.id
            WHERE x.id IS NULL AND r.conflict IS NULL
        )
        SELECT 'voucher' AS what, v.id, count(*) AS uses, v.uses_total AS allowed
        FROM kept k JOIN vouchers v ON v.id = k.voucher_id
        GROUP BY v.id HAVING count(*) > v.uses_total
        UNION ALL
        SELECT 'offer total', o.id, count(*), o.total_redemptions
        FROM kept k JOIN offers o ON o.id = k.offer_id
        WHERE o.total_redemptions IS NOT NULL
        GROUP BY o.id HAVING count(*) > o.total_redemptions
        UNION ALL
        SELECT 'offer budget', o.id, sum(k.budget_cost), o.budget
        FROM kept k JOIN offers o ON o.id = k.offer_id
        WHERE o.budget IS NOT NULL
        GROUP BY o.id HAVING sum(k.budget_cost) > o.budget
        UNION ALL
        SELECT 'holder limit', o.id, count(*), o.holder_limit_count
        FROM kept k JOIN offers o ON o.id = k.offer_id
        WHERE k.holder_period_start IS NOT NULL AND o.holder_limit_count IS NOT NULL
        GROUP BY o.id, k.holder_id, k.holder_period_start, o.holder_limit_count
        HAVING count(*) > o.holder_limit_count
    """,
    "holder period counts": """
        SELECT coalesce(u.holder_id, l.holder_id) AS holder_id,
               coalesce(u.offer_id, l.offer_id) AS offer_id,
               coalesce(u.period_start, l.holder_period_start) AS period_start,
               coalesce(u.uses, 0) AS uses, coalesce(l.uses, 0) AS ledger_uses
        FROM holder_offer_usage u FULL JOIN (
            SELECT r.holder_id, r.offer_id, r.holder_period_start, count(*) AS uses
            FROM redemptions r LEFT JOIN reversals x ON x.redemption_id = r.id
            WHERE x.id IS NULL AND r.holder_period_start IS NOT NULL
            GROUP BY 1, 2, 3
        ) l ON (l.holder_id, l.offer_id, l.holder_period_start)
             = (u.holder_id, u.offer_id, u.period_start)
        WHERE coalesce(u.uses, 0) <> coalesce(l.uses, 0)
    """,
    # The rollups hold the ledger rows at or below the sequencer's watermark (migration
    # 0021; rows from before it have no xact_id and were counted as they were written).
    "daily rollup": f"""
        WITH ledger AS (
            SELECT partner_id, offer_id, holder_category, local_day AS day,
                   1 AS redemptions, 0 AS reversals, purchase_amount AS purchase,
                   discount_amount AS discount, (offline_at IS NOT NULL)::int AS offline,
                   (conflict IS NOT NULL)::int AS conflicts
            FROM redemptions r, {WATERMARK} w
            WHERE r.xact_id IS NULL OR (r.xact_id, r.id)
                <= (w.xact_id + w.kind, CASE WHEN w.kind = 0 THEN w.id ELSE '' END)
            UNION ALL
            SELECT partner_id, offer_id, holder_category, local_day,
                   0, 1, -purchase_amount, -discount_amount, 0, 0
            FROM reversals x, {WATERMARK} w
            WHERE x.xact_id IS NULL OR (x.xact_id, x.id)
                <= (w.xact_id, CASE WHEN w.kind = 1 THEN w.id ELSE '' END)
        ), expected AS (
            SELECT partner_id, offer_id, holder_category, day,
                   sum(redemptions) AS redemptions, sum(reversals) AS reversals,
                   sum(purchase) AS purchase_total, sum(discount) AS discount_total,
                   sum(offline) AS offline, sum(conflicts) AS conflicts
            FROM ledger GROUP BY 1, 2, 3, 4
        )
        SELECT * FROM expected e FULL JOIN discount_rollup t
            USING (partner_id, offer_id, holder_category, day)
        WHERE e.redemptions IS DISTINCT FROM t.redemptions
           OR e.reversals IS DISTINCT FROM t.reversals
           OR e.purchase_total IS DISTINCT FROM t.purchase_total
           OR e.discount_total IS DISTINCT FROM t.discount_total
           OR e.offline IS DISTINCT FROM t.offline
           OR e.conflicts IS DISTINCT FROM t.conflicts
    """,
    # Reports read whole months here (migration 0007); the daily rollup is checked above.
    "monthly rollup": """
        WITH expected AS (
            SELECT date_trunc('month', day)::date AS month, partner_id, offer_id,
                   holder_category, sum(redemptions) AS redemptions,
                   sum(reversals) AS reversals, sum(purchase_total) AS purchase_total,
                   sum(discount_total) AS discount_total, sum(offline) AS offline,
                   sum(conflicts) AS conflicts
            FROM discount_rollup GROUP BY 1, 2, 3, 4
        )
        SELECT * FROM expected e FULL JOIN discount_rollup_monthly m
            USING (month, partner_id, offer_id, holder_category)
        WHERE e.redemptions IS DISTINCT FROM m.redemptions
           OR e.reversals IS DISTINCT FROM m.reversals
           OR e.purchase_total IS DISTINCT FROM m.purchase_total
           OR e.discount_total IS DISTINCT FROM m.discount_total
           OR e.offline IS DISTINCT FROM m.offline
           OR e.conflicts IS DISTINCT FROM m.conflicts
    """,
    # The signed statement's span of log indexes is read from here (migration 0025).
    "ledger spans": f"""
        WITH expected AS (
            SELECT {ENTRY_QUARTER} AS quarter, min(log_index) AS first_index,
                   max(log_index) AS last_index
            FROM ledger_entries GROUP BY 1
        )
        SELECT * FROM expected e FULL JOIN ledger_spans s USING (quarter)
        WHERE e.first_index IS DISTINCT FROM s.first_index
           OR e.last_index IS DISTINCT FROM s.last_index
    """,
}


async def mismatches(conn: asyncpg.Connection) -> dict[str, list[asyncpg.Record]]:
    """Every disagreement between a counter and the ledger, by check (empty: all agree)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        found = {name: await conn.fetch(query) for name, query in CHECKS.items()}
    return {name: rows for name, rows in found.items() if rows}
