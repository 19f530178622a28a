"""SQL for the redemption ledger, its counters and idempotency keys.

Every limit is enforced by a conditional write inside the redeem transaction (never a
read-then-write in Python): the voucher row is locked, the holder's period counter and
the offer's counters only move when they stay within their limits, and the ledger row,
the daily rollup and the idempotency key are written by the same statement. If any
condition fails, nothing is returned and the caller rolls the transaction back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

import asyncpg

from service.domain.auth import Principal
from service.domain.pagination import PageRequest
from service.domain.periods import PERIODS

#: Everything the rules need: the voucher, its holder, offer and partner, in one read.
_FACTS_COLUMNS = """
           v.id AS voucher_id, v.partner_id, v.holder_id, v.offer_id,
           v.status AS voucher_status, v.uses_left AS voucher_uses_left,
           v.expires_at AS voucher_expires_at,
           h.status AS holder_status, h.category AS holder_category,
           h.valid_until AS card_valid_until,
           o.title AS offer_title, o.status AS offer_status, o.starts_at AS offer_starts_at,
           o.ends_at AS offer_ends_at, o.eligible_categories, o.kind, o.percent_bp,
           o.max_discount, o.amount_off, o.fixed_price, o.nominal_value, o.min_purchase,
           o.holder_limit_count, o.holder_limit_period, o.total_redemptions,
           o.redeemed_count, o.budget, o.spent,
           p.status AS partner_status
"""
_FACTS_FROM = """
    FROM vouchers v
    JOIN holders h ON h.id = v.holder_id
    JOIN offers o ON o.id = v.offer_id
    JOIN partners p ON p.id = v.partner_id
"""
#: The holder's uses of the offer in its limit period: $2…$6 are the start of each period
#: now (`period_starts`), the offer's own period picks one.
_PERIOD_USES_JOIN = """
    LEFT JOIN holder_offer_usage u
      ON u.holder_id = v.holder_id AND u.offer_id = v.offer_id
     AND u.period_start = CASE o.holder_limit_period
            WHEN 'day' THEN $2::timestamptz WHEN 'week' THEN $3::timestamptz
            WHEN 'month' THEN $4::timestamptz WHEN 'year' THEN $5::timestamptz
            WHEN 'ever' THEN $6::timestamptz END
"""
_FACTS_WITH_USES = f"""
    SELECT {_FACTS_COLUMNS}, coalesce(u.uses, 0) AS holder_period_uses
    {_FACTS_FROM} {_PERIOD_USES_JOIN}
    WHERE v.id = $1
"""
_FACTS_AND_ANSWER = f"""
    SELECT {_FACTS_COLUMNS}, coalesce(u.uses, 0) AS holder_period_uses,
           k.request_hash AS stored_request_hash, k.response_status AS stored_status,
           k.response_body AS stored_body
    {_FACTS_FROM} {_PERIOD_USES_JOIN}
    LEFT JOIN idempotency_keys k
      ON k.partner_id = $7 AND k.key = $8 AND k.created_at > now() - $9::interval
    WHERE v.id = $1
"""


def _in_order(period_starts: Mapping[str, datetime]) -> tuple[datetime, ...]:
    return tuple(period_starts[period] for period in PERIODS)  # $2…$6


async def facts_with_uses(
    conn: asyncpg.Connection,
    voucher_id: str,
    period_starts: Mapping[str, datetime],
    *,
    lock: bool,
) -> asyncpg.Record | None:
    """The facts and the holder's uses in the offer's limit period (holder_period_uses;
    `period_starts`: the start of each period now), in one read. With `lock`, the voucher
    row stays locked until the transaction ends: concurrent redemptions of one voucher
    take turns."""
    return await conn.fetchrow(
        _FACTS_WITH_USES + (" FOR UPDATE OF v" if lock else ""),
        voucher_id,
        *_in_order(period_starts),
    )


async def facts_and_answer(
    conn: asyncpg.Connection,
    voucher_id: str,
    partner_id: str,
    idempotency_key: str,
    period_starts: Mapping[str, datetime],
) -> asyncpg.Record | None:
    """`facts_with_uses`, unlocked, and in the same read the answer stored for the
    Idempotency-Key (stored_* columns, NULL when there is none)."""
    return await conn.fetchrow(
        _FACTS_AND_ANSWER,
        voucher_id,
        *_in_order(period_starts),
        partner_id,
        idempotency_key,
        IDEMPOTENCY_RETENTION,
    )


# --- the redeem statement -------------------------------------------------------------

#: Idempotency-Keys are kept this long (docs/api.md: 24 h); the one place it is written.
IDEMPOTENCY_RETENTION = timedelta(hours=24)

#: Raised by the statement run at once (as a cast error) to undo all of it.
NOT_APPLIED = "youdai: redemption not applied, a condition no longer held"

#: The statement's inputs, named once: $1…$23 of LedgerWrite.args(). `judged_at` is the
#: moment the rules are judged at: now online, when it was made for an offline redemption.
_INPUT = """input AS (
    SELECT $1::text AS voucher_id, $2::text AS holder_id, $3::text AS offer_id,
           $4::text AS partner_id, $5::text AS holder_category, $6::text AS scanner_key_id,
           $7::bigint AS purchase_amount, $8::bigint AS discount_amount,
           $9::bigint AS budget_cost, $10::timestamptz AS period_start,
           $11::integer AS holder_limit, $12::text AS redemption_id, $13::timestamptz AS now,
           $14::bigint AS payable_amount, $15::text AS reference, $16::date AS local_day,
           $17::text AS idempotency_key, $18::bytea AS request_hash,
           $19::jsonb AS response_body, $20::bigint AS lock_id,
           $21::timestamptz AS judged_at, $22::timestamptz AS offline_at,
           $23::text AS conflict
)"""


def _redeem_statement(*, at_once: bool, enforce: bool = True) -> str:
    """The one statement that redeems: every counter moves only within its limit, then
    the ledger row, its daily and monthly rollups and the stored answer; its result names the
    redemption and the voucher's uses left, or nothing when any condition failed.

    In steps (`at_once=False`) it runs inside the caller's transaction, the voucher row
    already locked: on no result the caller rolls back. At once it is its own
    transaction on unlocked facts: it first takes the Idempotency-Key's lock, re-checks
    under row locks whatever a concurrent request can change, and when anything failed
    part-way a cast error undoes every write of it (NOT_APPLIED).

    Without `enforce` (an offline redemption the rules would have refused: its conflict is
    recorded with it, docs/rules.md) every counter moves whatever its limit, so that each
    stays exactly what the ledger says; a voucher's uses beyond its allowance are counted
    in uses_over, its uses_left never goes below 0. Only in steps.

    Rows are locked in one order everywhere (redeem, reversal): voucher, usage, offer.
    """
    assert enforce or not at_once
    # No idempotency row at once means some condition failed part-way: the cast error
    # then undoes every write of the statement (its own transaction).
    not_applied = (
        f""",
       (SELECT '{NOT_APPLIED}'::text WHERE NOT EXISTS (SELECT 1 FROM idempotency))::integer
       AS not_applied"""
        if at_once
        else ""
    )
    gate = (
        """, gate AS (
    -- Another request with this Idempotency-Key is in its transaction: apply nothing.
    SELECT pg_try_advisory_xact_lock(lock_id) AS free FROM input
)"""
        if at_once
        else ""
    )
    return f"""
WITH {_INPUT}{gate}, {_voucher_use(at_once=at_once, enforce=enforce)}, usage AS (
    -- Rule 1: the holder's uses in this period stay within the offer's holder limit.
    INSERT INTO holder_offer_usage AS u (holder_id, offer_id, period_start, uses)
    SELECT i.holder_id, i.offer_id, i.period_start, 1 FROM input i, voucher
    WHERE i.period_start IS NOT NULL
    ON CONFLICT (holder_id, offer_id, period_start)
    DO UPDATE SET uses = u.uses + 1{
        " WHERE u.uses < (SELECT holder_limit FROM input)" if enforce else ""
    }
    RETURNING uses
), offer AS (
    -- Rule 1: never one use past total_redemptions, never one fen past the budget.
    UPDATE offers o SET redeemed_count = o.redeemed_count + 1, spent = o.spent + i.budget_cost{
        _CONFLICT_COUNTS if not enforce else ""
    }
    FROM input i
    WHERE o.id = i.offer_id{_OFFER_LIMITS if enforce else ""}
      AND EXISTS (SELECT 1 FROM voucher)
      AND (i.period_start IS NULL OR EXISTS (SELECT 1 FROM usage))
    RETURNING o.id
), ledger AS (
    INSERT INTO redemptions
        (id, voucher_id, offer_id, partner_id, holder_id, holder_category, scanner_key_id,
         purchase_amount, discount_amount, payable_amount, budget_cost, holder_period_start,
         reference, created_at, local_day, offline_at, conflict)
    SELECT i.redemption_id, i.voucher_id, i.offer_id, i.partner_id, i.holder_id,
           i.holder_category, i.scanner_key_id, i.purchase_amount, i.discount_amount,
           i.payable_amount, i.budget_cost, i.period_start, i.reference, i.now, i.local_day,
           i.offline_at, i.conflict
    FROM input i, offer
    RETURNING id
), rollup AS (
    -- Rule 4: the report totals move in the same statement as the ledger.
    INSERT INTO discount_rollup AS t
        (partner_id, offer_id, holder_category, day, redemptions, purchase_total,
         discount_total, offline, conflicts)
    SELECT i.partner_id, i.offer_id, i.holder_category, i.local_day, 1, i.purchase_amount,
           i.discount_amount, (i.offline_at IS NOT NULL)::int, (i.conflict IS NOT NULL)::int
    FROM input i, ledger
    ON CONFLICT (day, partner_id, offer_id, holder_category) DO UPDATE
    SET redemptions = t.redemptions + 1,
        purchase_total = t.purchase_total + EXCLUDED.purchase_total,
        discount_total = t.discount_total + EXCLUDED.discount_total,
        offline = t.offline + EXCLUDED.offline, conflicts = t.conflicts + EXCLUDED.conflicts
), monthly AS (
    -- The same totals by calendar month, for reports of whole months (migration 0007).
    INSERT INTO discount_rollup_monthly AS m
        (partner_id, offer_id, holder_category, month, redemptions, purchase_total,
         discount_total, offline, conflicts)
    SELECT i.partner_id, i.offer_id, i.holder_category, date_trunc('month', i.local_day),
           1, i.purchase_amount, i.discount_amount, (i.offline_at IS NOT NULL)::int,
           (i.conflict IS NOT NULL)::int
    FROM input i, ledger
    ON CONFLICT (month, partner_id, offer_id, holder_category) DO UPDATE
    SET redemptions = m.redemptions + 1,
        purchase_total = m.purchase_total + EXCLUDED.purchase_total,
        discount_total = m.discount_total + EXCLUDED.discount_total,
        offline = m.offline + EXCLUDED.offline, conflicts = m.conflicts + EXCLUDED.conflicts
), idempotency AS (
    -- Rule 2: the answer, stored for the retries with the same key.
    INSERT INTO idempotency_keys
        (partner_id, key, request_hash, response_status, response_body, created_at)
    SELECT i.partner_id, i.idempotency_key, i.request_hash, 201,
           i.response_body || jsonb_build_object('uses_left', voucher.uses_left), i.now
    FROM input i, ledger, voucher
    WHERE i.idempotency_key IS NOT NULL
    ON CONFLICT (partner_id, key) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
        response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at
    -- Only a key past its retention may be taken over: a live one was checked first
    -- (in steps, under its lock) or was answered since it was read (at once).
    WHERE idempotency_keys.created_at
          < EXCLUDED.created_at - interval '{IDEMPOTENCY_RETENTION.total_seconds():.0f} seconds'
    RETURNING 1
)
-- One row, always: its scalar subqueries are what makes NOT_APPLIED be evaluated.
SELECT (SELECT id FROM ledger) AS id, (SELECT uses_left FROM voucher) AS uses_left{not_applied}
"""


#: An offline conflict's use and spending, counted apart (migration 0020): what is left
#: once they are taken out stays within the offer's total and budget.
_CONFLICT_COUNTS = """,
        conflict_count = o.conflict_count + 1, conflict_spent = o.conflict_spent + i.budget_cost"""
_OFFER_LIMITS = """ AND o.status = 'active'
      AND (o.total_redemptions IS NULL OR o.redeemed_count < o.total_redemptions)
      AND (o.budget IS NULL OR o.spent + i.budget_cost <= o.budget)"""


def _voucher_use(*, at_once: bool, enforce: bool) -> str:
    """The voucher CTE: one use taken, within what it allows (`enforce`) or past it."""
    if not enforce:
        return """voucher AS (
    -- An offline conflict: the use is counted whatever is left (uses_over past 0).
    UPDATE vouchers v
    SET uses_left = greatest(v.uses_left - 1, 0),
        uses_over = v.uses_over + CASE WHEN v.uses_left = 0 THEN 1 ELSE 0 END,
        status = CASE WHEN v.uses_left = 1 AND v.status = 'active' THEN 'used_up'
                      ELSE v.status END,
        updated_at = i.now
    FROM input i
    WHERE v.id = i.voucher_id
    RETURNING v.uses_left
)"""
    return f"""voucher AS (
    -- Rule 1: a voucher is never used more times than allowed.
    UPDATE vouchers v
    SET uses_left = v.uses_left - 1,
        status = CASE WHEN v.uses_left = 1 THEN 'used_up' ELSE v.status END,
        updated_at = i.now
    FROM input i
    WHERE v.id = i.voucher_id AND v.status = 'active' AND v.uses_left > 0
      AND v.expires_at > i.judged_at{" AND (SELECT free FROM gate)" if at_once else ""}
    RETURNING v.uses_left
)"""


_REDEEM = _redeem_statement(at_once=False)
_REDEEM_AT_ONCE = _redeem_statement(at_once=True)
_RECORD_CONFLICT = _redeem_statement(at_once=False, enforce=False)


@dataclass(frozen=True, slots=True)
class LedgerWrite:
    """One redemption to write: its ledger row, the counters it moves, its stored answer
    (without uses_left, which the statement adds)."""

    redemption_id: str
    facts: Mapping[str, Any]
    scanner_key_id: str
    purchase_amount: int
    discount_amount: int
    payable_amount: int
    budget_cost: int
    holder_period_start: datetime | None
    reference: str
    now: datetime
    local_day: date
    idempotency_key: str | None = None
    request_hash: bytes | None = None
    response_body: dict[str, Any] | None = None
    #: When the rules were judged: `now` online, when it was made offline.
    judged_at: datetime | None = None
    offline_at: datetime | None = None
    conflict: str | None = None  # an offline redemption's first broken rule's code

    def args(self) -> tuple[Any, ...]:
        """$1…$23 of the redeem statement, in the order _INPUT names them."""
        facts = self.facts
        key = self.idempotency_key
        return (
            facts["voucher_id"],
            facts["holder_id"],
            facts["offer_id"],
            facts["partner_id"],
            facts["holder_category"],
            self.scanner_key_id,
            self.purchase_amount,
            self.discount_amount,
            self.budget_cost,
            self.holder_period_start,
            facts["holder_limit_count"],
            self.redemption_id,
            self.now,
            self.payable_amount,
            self.reference,
            self.local_day,
            key,
            self.request_hash,
            self.response_body,
            None if key is None else idempotency_lock_id(facts["partner_id"], key),
            self.now if self.judged_at is None else self.judged_at,
            self.offline_at,
            self.conflict,
        )


async def redeem(conn: asyncpg.Connection, write: LedgerWrite) -> asyncpg.Record | None:
    """Apply one redemption inside the caller's transaction, the voucher row locked;
    None when a limit (or a concurrent change) refused it: the caller rolls back."""
    return _applied(await conn.fetchrow(_REDEEM, *write.args()))


async def redeem_at_once(conn: asyncpg.Connection, write: LedgerWrite) -> asyncpg.Record | None:
    """Apply one redemption checked on unlocked facts, in ONE statement run outside any
    transaction (so it is its own): one round trip instead of five. Returns the
    redemption's id and the voucher's uses left; None when any condition failed, in
    which case nothing at all was written and the caller redeems in steps."""
    assert write.idempotency_key is not None
    try:
        return _applied(await conn.fetchrow(_REDEEM_AT_ONCE, *write.args()))
    except asyncpg.InvalidTextRepresentationError as error:
        if NOT_APPLIED not in str(error):
            raise
        return None


async def record_conflict(conn: asyncpg.Connection, write: LedgerWrite) -> asyncpg.Record:
    """Record an offline redemption that the rules would have refused (write.conflict),
    inside the caller's transaction, the voucher row locked: every counter moves past its
    limit if need be, so that each stays exactly what the ledger says."""
    assert write.offline_at is not None and write.conflict is not None
    row = _applied(await conn.fetchrow(_RECORD_CONFLICT, *write.args()))
    assert row is not None  # no condition can refuse it
    return row


def _applied(row: asyncpg.Record) -> asyncpg.Record | None:
    """The statement's one row when it wrote the redemption, else None."""
    return row if row["id"] is not None else None


# --- idempotency ------------------------------------------------------------------------


def idempotency_lock_id(partner_id: str, key: str) -> int:
    """A 64-bit advisory lock id for one (partner, key): held while its request runs."""
    digest = hashlib.blake2b(f"{partner_id}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def try_lock_idempotency_key(conn: asyncpg.Connection, partner_id: str, key: str) -> bool:
    """Rule 2: a second request with a key whose first is still running is told so at once."""
    return cast(
        bool,
        await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock($1)", idempotency_lock_id(partner_id, key)
        ),
    )


async def stored_answer(
    conn: asyncpg.Connection, partner_id: str, key: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """
        SELECT request_hash, response_status, response_body FROM idempotency_keys
        WHERE partner_id = $1 AND key = $2 AND created_at > now() - $3::interval
        """,
        partner_id,
        key,
        IDEMPOTENCY_RETENTION,
    )


async def store_answer(
    conn: asyncpg.Connection,
    partner_id: str,
    key: str,
    request_hash: bytes,
    status: int,
    body: dict[str, Any],
) -> None:
    """Record a refusal for replay (a success is recorded by `redeem` itself)."""
    await conn.execute(
        """
        INSERT INTO idempotency_keys (partner_id, key, request_hash, response_status, response_body)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (partner_id, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
            response_body = EXCLUDED.response_body, created_at = now()
        WHERE idempotency_keys.created_at < now() - $6::interval
        """,
        partner_id,
        key,
        request_hash,
        status,
        body,
        IDEMPOTENCY_RETENTION,
    )


async def purge_idempotency_keys(conn: asyncpg.Connection) -> int:
    result = await conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval",
        IDEMPOTENCY_RETENTION,
    )
    return int(result.split()[-1])


# --- reading the ledger ---------------------------------------------------------------

_REDEMPTION = """
    r.id, r.voucher_id, r.offer_id, r.partner_id, r.purchase_amount, r.discount_amount,
    r.payable_amount, r.reference, r.created_at, r.scanner_key_id AS key_id,
    CASE WHEN x.id IS NULL THEN 'completed' ELSE 'reversed' END AS status,
    x.id AS reversal_id, x.created_at AS reversed_at, x.reason AS reversal_reason,
    x.actor AS reversal_actor, r.offline_at, r.conflict
"""
_FROM = "redemptions r LEFT JOIN reversals x ON x.redemption_id = r.id"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A redemption as read back: never who the holder was."""

    id: str
    voucher_id: str
    offer_id: str
    partner_id: str
    purchase_amount: int
    discount_amount: int
    payable_amount: int
    reference: str
    created_at: datetime
    key_id: str  # the scanner key (till) that redeemed
    status: str  # completed | reversed
    reversal_id: str | None
    reversed_at: datetime | None
    reversal_reason: str | None
    reversal_actor: dict[str, Any] | None  # as the audit log names an actor (docs/staff.md)
    offline_at: datetime | None  # when an offline till made it (created_at: when it came)
    conflict: str | None  # the rule an offline redemption broke (docs/rules.md)


@dataclass(frozen=True, slots=True)
class TillEntry(LedgerEntry):
    """A till's own redemption, with what its screen shows of the offer."""

    offer_title: str
    offer_kind: str


@dataclass(frozen=True, slots=True)
class Till:
    key_id: str
    label: str
    partner_id: str
    partner_name: str


async def get_redemption(conn: asyncpg.Connection, redemption_id: str) -> LedgerEntry | None:
    row = await conn.fetchrow(f"SELECT {_REDEMPTION} FROM {_FROM} WHERE r.id = $1", redemption_id)
    return None if row is None else LedgerEntry(**row)


async def list_redemptions(
    conn: asyncpg.Connection,
    page: PageRequest,
    *,
    partner_id: str | None,
    offer_id: str | None,
    scanner_key_id: str | None,
    status: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    offline: bool | None = None,
    conflict: bool | None = None,
) -> list[LedgerEntry]:
    rows = await conn.fetch(
        f"""
        SELECT {_REDEMPTION} FROM {_FROM}
        WHERE ($1::text IS NULL OR r.id < $1)
          -- Rule 5: a partner caller passes its own partner id; it sees nothing else,
          -- another partner's till key included.
          AND ($2::text IS NULL OR r.partner_id = $2)
          AND ($3::text IS NULL OR r.offer_id = $3)
          AND ($4::text IS NULL OR r.scanner_key_id = $4)
          AND ($5::text IS NULL OR (x.id IS NULL) = ($5 = 'completed'))
          AND ($6::timestamptz IS NULL OR r.created_at >= $6)
          AND ($7::timestamptz IS NULL OR r.created_at < $7)
          AND ($9::boolean IS NULL OR (r.offline_at IS NOT NULL) = $9)
          AND ($10::boolean IS NULL OR (r.conflict IS NOT NULL) = $10)
        ORDER BY r.id DESC
        LIMIT $8
        """,
        page.after_id,
        partner_id,
        offer_id,
        scanner_key_id,
        status,
        created_from,
        created_to,
        page.limit + 1,
        offline,
        conflict,
    )
    return [LedgerEntry(**row) for row in rows]


# --- reversal ---------------------------------------------------------------------------


async def lock_for_reversal(conn: asyncpg.Connection, redemption_id: str) -> asyncpg.Record | None:
    """The redemption with its voucher row locked (same lock order as redeem: voucher
    first), and whether it was already reversed."""
    return await conn.fetchrow(
        """
        SELECT r.*, v.status AS voucher_status,
               EXISTS (SELECT 1 FROM reversals x WHERE x.redemption_id = r.id) AS reversed
        FROM redemptions r JOIN vouchers v ON v.id = r.voucher_id
        WHERE r.id = $1
        FOR UPDATE OF v
        """,
        redemption_id,
    )


async def lock_counters_for_reversal(
    conn: asyncpg.Connection, redemption: Mapping[str, Any]
) -> None:
    """Lock the holder's period count, then the offer: the order redeem takes them in.

    Data-changing steps of one WITH statement take their locks in no promised order, so
    a reversal locks its counters explicitly first; otherwise a reversal and a redeem on
    one offer could each hold what the other waits for.
    """
    if redemption["holder_period_start"] is not None:
        await conn.execute(
            "SELECT 1 FROM holder_offer_usage "
            "WHERE holder_id = $1 AND offer_id = $2 AND period_start = $3 FOR UPDATE",
            redemption["holder_id"],
            redemption["offer_id"],
            redemption["holder_period_start"],
        )
    await conn.execute("SELECT 1 FROM offers WHERE id = $1 FOR UPDATE", redemption["offer_id"])


_REVERSE = """
WITH reversal AS (
    -- Applied once: reversals.redemption_id is UNIQUE.
    INSERT INTO reversals
        (id, redemption_id, offer_id, partner_id, holder_category, purchase_amount,
         discount_amount, reason, actor_id, actor_role, actor, created_at, local_day)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $17, $11, $12)
    ON CONFLICT (redemption_id) DO NOTHING
    RETURNING id, created_at
), usage AS (
    UPDATE holder_offer_usage SET uses = uses - 1
    WHERE holder_id = $13 AND offer_id = $3 AND period_start = $14 AND uses > 0
      AND EXISTS (SELECT 1 FROM reversal)
), offer AS (
    UPDATE offers SET redeemed_count = redeemed_count - 1, spent = spent - $15,
        conflict_count = conflict_count - $18::int, conflict_spent = conflict_spent - $18 * $15
    WHERE id = $3 AND EXISTS (SELECT 1 FROM reversal)
), voucher AS (
    -- The use comes back; a used-up voucher is active again unless its holder has
    -- claimed a new one for the offer meanwhile (at most one active per offer). A voucher
    -- used past its allowance offline gives back a use beyond it first (uses_over).
    UPDATE vouchers v
    SET uses_left = v.uses_left + CASE WHEN v.uses_over > 0 THEN 0 ELSE 1 END,
        uses_over = greatest(v.uses_over - 1, 0), updated_at = $11,
        status = CASE
            WHEN v.uses_over > 0 THEN v.status
            WHEN v.status = 'used_up' AND NOT EXISTS (
                SELECT 1 FROM vouchers w
                WHERE w.holder_id = v.holder_id AND w.offer_id = v.offer_id
                  AND w.status = 'active' AND w.id <> v.id
            ) THEN 'active'
            ELSE v.status END
    WHERE v.id = $16 AND (v.uses_left < v.uses_total OR v.uses_over > 0)
      AND EXISTS (SELECT 1 FROM reversal)
), rollup AS (
    -- A reversal counts on the day it happens (report months are never rewritten).
    INSERT INTO discount_rollup AS t
        (partner_id, offer_id, holder_category, day, reversals, purchase_total, discount_total)
    SELECT $4, $3, $5, $12, 1, -$6::bigint, -$7::bigint FROM reversal
    ON CONFLICT (day, partner_id, offer_id, holder_category) DO UPDATE
    SET reversals = t.reversals + 1,
        purchase_total = t.purchase_total + EXCLUDED.purchase_total,
        discount_total = t.discount_total + EXCLUDED.discount_total
), monthly AS (
    INSERT INTO discount_rollup_monthly AS m
        (partner_id, offer_id, holder_category, month, reversals, purchase_total,
         discount_total)
    SELECT $4, $3, $5, date_trunc('month', $12::date), 1, -$6::bigint, -$7::bigint
    FROM reversal
    ON CONFLICT (month, partner_id, offer_id, holder_category) DO UPDATE
    SET reversals = m.reversals + 1,
        purchase_total = m.purchase_total + EXCLUDED.purchase_total,
        discount_total = m.discount_total + EXCLUDED.discount_total
)
SELECT id, created_at FROM reversal
"""


async def reverse(
    conn: asyncpg.Connection,
    *,
    reversal_id: str,
    redemption: asyncpg.Record,
    reason: str,
    actor: Principal,
    now: datetime,
    local_day: date,
) -> asyncpg.Record | None:
    """Write the reversal and give the use, the budget and the period count back;
    None if a concurrent reversal got there first."""
    return await conn.fetchrow(
        _REVERSE,
        reversal_id,
        redemption["id"],
        redemption["offer_id"],
        redemption["partner_id"],
        redemption["holder_category"],
        redemption["purchase_amount"],
        redemption["discount_amount"],
        reason,
        actor.actor,
        actor.actor_role,
        now,
        local_day,
        redemption["holder_id"],
        redemption["holder_period_start"],
        redemption["budget_cost"],
        redemption["voucher_id"],
        actor.audit_actor,
        # A conflict's use and spending come back from the conflicts' counts too.
        0 if redemption["conflict"] is None else 1,
    )


# --- double scans, refusals, a till's own day ---------------------------------------------


async def last_redeemed_at(conn: asyncpg.Connection, voucher_id: str) -> datetime | None:
    """The voucher's latest redemption that was not reversed (a till warns of a double scan)."""
    return cast(
        datetime | None,
        await conn.fetchval(
            """
        SELECT max(r.created_at) FROM redemptions r
        WHERE r.voucher_id = $1
          AND NOT EXISTS (SELECT 1 FROM reversals x WHERE x.redemption_id = r.id)
        """,
            voucher_id,
        ),
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused redemption of a known voucher: never anything about its holder."""

    id: str
    partner_id: str
    offer_id: str
    scanner_key_id: str
    code: str
    stage: str
    created_at: datetime


async def record_refusal(conn: asyncpg.Connection, refusal: Refusal) -> None:
    await conn.execute(
        """
        INSERT INTO redemption_refusals
            (id, partner_id, offer_id, scanner_key_id, code, stage, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        refusal.id,
        refusal.partner_id,
        refusal.offer_id,
        refusal.scanner_key_id,
        refusal.code,
        refusal.stage,
        refusal.created_at,
    )


async def list_refusals(
    conn: asyncpg.Connection,
    page: PageRequest,
    *,
    partner_id: str | None,
    offer_id: str | None,
    scanner_key_id: str | None,
    code: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> list[Refusal]:
    rows = await conn.fetch(
        """
        SELECT id, partner_id, offer_id, scanner_key_id, code, stage, created_at
        FROM redemption_refusals
        WHERE ($1::text IS NULL OR id < $1)
          -- Rule 5: a partner caller passes its own partner id; it sees nothing else.
          AND ($2::text IS NULL OR partner_id = $2)
          AND ($3::text IS NULL OR offer_id = $3)
          AND ($4::text IS NULL OR scanner_key_id = $4)
          AND ($5::text IS NULL OR code = $5)
          AND ($6::timestamptz IS NULL OR created_at >= $6)
          AND ($7::timestamptz IS NULL OR created_at < $7)
        ORDER BY id DESC
        LIMIT $8
        """,
        page.after_id,
        partner_id,
        offer_id,
        scanner_key_id,
        code,
        created_from,
        created_to,
        page.limit + 1,
    )
    return [Refusal(**row) for row in rows]


async def scanner_day(
    conn: asyncpg.Connection,
    page: PageRequest,
    scanner_key_id: str,
    since: datetime,
    until: datetime,
) -> list[TillEntry]:
    """One till key's own redemptions in [since, until), newest first (ids are time
    ordered; the cursor is the last id of the previous page)."""
    rows = await conn.fetch(
        f"""
        SELECT {_REDEMPTION}, o.title AS offer_title, o.kind AS offer_kind
        FROM {_FROM} JOIN offers o ON o.id = r.offer_id
        -- Rule 5: a till sees only what its own key redeemed.
        WHERE r.scanner_key_id = $1 AND r.created_at >= $2 AND r.created_at < $3
          AND ($4::text IS NULL OR r.id < $4)
        ORDER BY r.id DESC
        LIMIT $5
        """,
        scanner_key_id,
        since,
        until,
        page.after_id,
        page.limit + 1,
    )
    return [TillEntry(**row) for row in rows]


async def till_of(conn: asyncpg.Connection, key_id: str) -> Till | None:
    """The scanner key's label and its partner's name."""
    row = await conn.fetchrow(
        """
        SELECT k.id AS key_id, k.label, p.id AS partner_id, p.name AS partner_name
        FROM api_keys k JOIN partners p ON p.id = k.partner_id
        WHERE k.id = $1
        """,
        key_id,
    )
    return None if row is None else Till(**row)
