"""SQL for the redemption ledger, its counters and idempotency keys.

A redeem is two statements (service/flows/redemptions.py): `begin` reads, unlocked,
everything the rules need and any answer already given to the key; `write`, its own
transaction, takes the key's lock, locks the rows, judges every limit on them as they
are, moves every counter only within its limit and appends the ledger row, which also
keeps the key and the answer (migration 0022) — all of it or nothing. A refusal is kept
for replay by `store_refusal`. The report rollups and the tamper-evident log follow the
ledger off the request path (migration 0021).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

import asyncpg

from service.db.ledger import LEDGER_WRITER, enter_as_ledger_writer
from service.domain.auth import Principal
from service.domain.offers import PRICING_FIELDS
from service.domain.pagination import PageRequest
from service.domain.periods import PERIODS
from service.domain.pricing import PriceRule
from service.domain.redemptions import RedemptionFacts
from service.domain.vouchers import Eligibility

#: Idempotency-Keys are answered again this long (docs/api.md: 24 h); the one place it is
#: written.
IDEMPOTENCY_RETENTION = timedelta(hours=24)

#: Everything the rules need: the voucher, its holder, offer and partner, and the holder's
#: uses of the offer in its limit period ($2…$6: the start of each period now, the
#: offer's own period picks one).
_FACTS = """
    SELECT v.id AS voucher_id, v.partner_id, v.holder_id, v.offer_id,
           v.status AS voucher_status, v.uses_left AS voucher_uses_left,
           v.expires_at AS voucher_expires_at,
           h.status AS holder_status, h.category AS holder_category,
           h.valid_until AS card_valid_until,
           o.title AS offer_title, o.status AS offer_status, o.starts_at AS offer_starts_at,
           o.ends_at AS offer_ends_at, o.eligible_categories, o.kind, o.percent_bp,
           o.max_discount, o.amount_off, o.fixed_price, o.nominal_value, o.min_purchase,
           o.holder_limit_count, o.holder_limit_period, o.total_redemptions,
           o.redeemed_count, o.budget, o.spent,
           p.status AS partner_status,
           -- A subquery on the whole key, not a join: whatever a connection's cached plan
           -- thought of the table's size when it was made, this is one index lookup.
           coalesce((SELECT u.uses FROM holder_offer_usage u
                     WHERE u.holder_id = v.holder_id AND u.offer_id = v.offer_id
                       AND u.period_start = CASE o.holder_limit_period
                            WHEN 'day' THEN $2::timestamptz WHEN 'week' THEN $3::timestamptz
                            WHEN 'month' THEN $4::timestamptz WHEN 'year' THEN $5::timestamptz
                            WHEN 'ever' THEN $6::timestamptz END), 0) AS holder_period_uses
    FROM vouchers v
    JOIN holders h ON h.id = v.holder_id
    JOIN offers o ON o.id = v.offer_id
    JOIN partners p ON p.id = v.partner_id
    WHERE v.id = $1
"""


@dataclass(frozen=True, slots=True)
class VoucherFacts:
    """One voucher as the redemption rules judge it, with the ids its ledger row needs."""

    voucher_id: str
    partner_id: str
    holder_id: str
    offer_id: str
    offer_title: str
    offer_kind: str
    offer_status: str
    holder_category: str
    rules: RedemptionFacts
    #: The holder's uses of the offer in the limit period that holds now.
    holder_period_uses: int


def _facts(row: Mapping[str, Any]) -> VoucherFacts:
    return VoucherFacts(
        voucher_id=row["voucher_id"],
        partner_id=row["partner_id"],
        holder_id=row["holder_id"],
        offer_id=row["offer_id"],
        offer_title=row["offer_title"],
        offer_kind=row["kind"],
        offer_status=row["offer_status"],
        holder_category=row["holder_category"],
        rules=RedemptionFacts(
            eligibility=Eligibility.of(row),
            voucher_status=row["voucher_status"],
            voucher_uses_left=row["voucher_uses_left"],
            voucher_expires_at=row["voucher_expires_at"],
            price_rule=PriceRule(**{name: row[name] for name in PRICING_FIELDS}),
            holder_limit_count=row["holder_limit_count"],
            holder_limit_period=row["holder_limit_period"],
            total_redemptions=row["total_redemptions"],
            redeemed_count=row["redeemed_count"],
            budget=row["budget"],
            spent=row["spent"],
        ),
        holder_period_uses=row["holder_period_uses"],
    )


def _in_order(period_starts: Mapping[str, datetime]) -> tuple[datetime, ...]:
    return tuple(period_starts[period] for period in PERIODS)  # $2…$6


async def read_facts(
    conn: asyncpg.Connection, voucher_id: str, period_starts: Mapping[str, datetime]
) -> VoucherFacts | None:
    """The voucher's facts, unlocked (a preview; `period_starts`: each period's start now)."""
    row = await conn.fetchrow(_FACTS, voucher_id, *_in_order(period_starts))
    return None if row is None else _facts(row)


# --- the redeem: one read, one write ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """What every answer shows of a redemption's ledger row (never who the holder was)."""

    id: str
    voucher_id: str
    offer_id: str
    partner_id: str
    purchase_amount: int
    discount_amount: int
    payable_amount: int
    reference: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Redeemed(LedgerRow):
    """A redemption as its ledger row keeps it: the 201 answered, and answered again."""

    uses_left: int  # the voucher's, once this use was taken
    offline_at: datetime | None  # an offline till's redemption: when it was made
    conflict: str | None  # the rule it broke, recorded all the same (docs/rules.md)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What an Idempotency-Key was answered: a redemption, or a refusal kept for replay."""

    request_hash: bytes
    redeemed: Redeemed | None
    #: A refusal's problem (errors.problem_to_keep), or an answer kept before migration
    #: 0022.
    body: dict[str, Any] | None


#: The live answer to key $K of partner $P as of `now` $N: its redemption (migration
#: 0022) or its kept refusal (idempotency_keys), at most one row.
_ANSWERED = """
    SELECT r.request_hash AS a_request_hash, NULL::jsonb AS a_problem,
           r.id AS a_id, r.voucher_id AS a_voucher_id, r.offer_id AS a_offer_id,
           r.partner_id AS a_partner_id, r.purchase_amount AS a_purchase_amount,
           r.discount_amount AS a_discount_amount, r.payable_amount AS a_payable_amount,
           r.reference AS a_reference, r.created_at AS a_created_at,
           r.uses_left AS a_uses_left, r.offline_at AS a_offline_at,
           r.conflict AS a_conflict
    FROM redemptions r
    WHERE r.partner_id = $P AND r.idempotency_key = $K
      AND r.created_at > $N::timestamptz - $R::interval
    UNION ALL
    SELECT k.request_hash, k.response_body,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM idempotency_keys k
    WHERE k.partner_id = $P AND k.key = $K AND k.created_at > $N::timestamptz - $R::interval
    LIMIT 1
"""


def _answered(params: Mapping[str, int]) -> str:
    """_ANSWERED with its placeholders numbered for the statement it goes in."""
    text = _ANSWERED
    for name, number in params.items():
        text = text.replace(f"${name}", f"${number}")
    return text


def _redeemed(row: Mapping[str, Any], prefix: str = "") -> Redeemed | None:
    if row[f"{prefix}id"] is None:
        return None
    return Redeemed(**{name: row[prefix + name] for name in Redeemed.__dataclass_fields__})


def _stored(row: Mapping[str, Any]) -> StoredAnswer | None:
    """The answer _ANSWERED found (its columns are a_*), if any."""
    if row["a_request_hash"] is None:
        return None
    return StoredAnswer(bytes(row["a_request_hash"]), _redeemed(row, "a_"), row["a_problem"])


@dataclass(frozen=True, slots=True)
class RedeemStart:
    """What a redeem's read finds: the answer its Idempotency-Key was given already, and
    the voucher (None: unknown). Nothing is locked: a refusal, most of what a burst of
    rescans gets, never waits for a voucher another request holds."""

    answered: StoredAnswer | None
    voucher: VoucherFacts | None


_BEGIN = f"""
    SELECT a.*, f.*
    FROM (SELECT 1) one
    LEFT JOIN LATERAL ({_answered({"P": 7, "K": 8, "N": 9, "R": 10})}) a ON true
    LEFT JOIN LATERAL ({_FACTS}) f ON true
"""


async def begin(
    conn: asyncpg.Connection,
    voucher_id: str | None,
    partner_id: str,
    key: str,
    period_starts: Mapping[str, datetime],
    now: datetime,
) -> RedeemStart:
    """The redeem's one read (see RedeemStart)."""
    row = await conn.fetchrow(
        _BEGIN,
        voucher_id,
        *_in_order(period_starts),
        partner_id,
        key,
        now,
        IDEMPOTENCY_RETENTION,
    )
    return RedeemStart(
        answered=_stored(row),
        voucher=None if row["voucher_id"] is None else _facts(row),
    )


@dataclass(frozen=True, slots=True)
class RedemptionWrite:
    """One redemption to write: its ledger row, the counters it moves, its key."""

    redemption_id: str
    voucher: VoucherFacts
    scanner_key_id: str
    purchase_amount: int
    discount_amount: int
    payable_amount: int
    budget_cost: int
    holder_period_start: datetime | None
    reference: str
    now: datetime
    local_day: date
    idempotency_key: str | None
    request_hash: bytes | None
    offline_at: datetime | None = None  # made by a till offline (docs/rules.md)
    #: The first rule an offline redemption broke: recorded past every limit.
    conflict: str | None = None

    def args(self) -> tuple[Any, ...]:
        """$1…$23 of the write, in the order _INPUT names them."""
        facts = self.voucher
        return (
            facts.voucher_id,
            facts.holder_id,
            facts.offer_id,
            facts.partner_id,
            facts.holder_category,
            self.scanner_key_id,
            self.purchase_amount,
            self.discount_amount,
            self.budget_cost,
            self.holder_period_start,
            facts.rules.holder_limit_count,
            self.redemption_id,
            self.now,
            self.payable_amount,
            self.reference,
            self.local_day,
            self.idempotency_key,
            self.request_hash,
            IDEMPOTENCY_RETENTION,
            self.offline_at or self.now,  # the rules' moment: when it was made
            self.offline_at,
            self.conflict,
            idempotency_lock_id(facts.partner_id, self.idempotency_key or self.redemption_id),
        )


#: The write's inputs, named once: $1…$23 of RedemptionWrite.args() ($19, the retention,
#: is _ANSWERED's). The rows themselves are found by the parameters ($1 the voucher, $2 $3
#: $10 the holder's period count, $3 the offer), not by a join with `input`: a connection
#: keeps a generic plan, and one made while a table was nearly empty would hash-join a
#: whole table (measured: a sequential scan of every period count in each redeem).
_INPUT = """input AS (
    SELECT $1::text AS voucher_id, $2::text AS holder_id, $3::text AS offer_id,
           $4::text AS partner_id, $5::text AS holder_category, $6::text AS scanner_key_id,
           $7::bigint AS purchase_amount, $8::bigint AS discount_amount,
           $9::bigint AS budget_cost, $10::timestamptz AS period_start,
           $11::integer AS holder_limit, $12::text AS redemption_id, $13::timestamptz AS now,
           $14::bigint AS payable_amount, $15::text AS reference, $16::date AS local_day,
           $17::text AS idempotency_key, $18::bytea AS request_hash,
           $20::timestamptz AS judged_at, $21::timestamptz AS offline_at,
           $22::text AS conflict, $23::bigint AS lock_id
)"""


@dataclass(frozen=True, slots=True)
class _Limits:
    """The parts of the write that hold every limit, or record past them."""

    voucher_set: str
    voucher_limit: str
    holder_limit: str
    offer_limits: str
    conflict_counts: str


_ENFORCED = _Limits(
    voucher_set="""uses_left = v.uses_left - 1,
        status = CASE WHEN v.uses_left = 1 THEN 'used_up' ELSE v.status END""",
    voucher_limit=""" AND v.status = 'active' AND v.uses_left > 0
      AND v.expires_at > i.judged_at""",
    holder_limit=" WHERE u.uses < (SELECT holder_limit FROM input)",
    offer_limits=""" AND o.status = 'active'
      AND (o.total_redemptions IS NULL OR o.redeemed_count < o.total_redemptions)
      AND (o.budget IS NULL OR o.spent + i.budget_cost <= o.budget)""",
    conflict_counts="",
)
#: An offline redemption with its conflict (docs/rules.md): every counter moves whatever
#: its limit, so that each stays exactly what the ledger says — a voucher's uses past its
#: allowance in uses_over (its uses_left never below 0), the offer's in conflict_count and
#: conflict_spent.
_PAST_LIMITS = _Limits(
    voucher_set="""uses_left = greatest(v.uses_left - 1, 0),
        uses_over = v.uses_over + CASE WHEN v.uses_left = 0 THEN 1 ELSE 0 END,
        status = CASE WHEN v.uses_left = 1 AND v.status = 'active' THEN 'used_up'
                      ELSE v.status END""",
    voucher_limit="",
    holder_limit="",
    offer_limits="",
    conflict_counts=""",
        conflict_count = o.conflict_count + 1, conflict_spent = o.conflict_spent + i.budget_cost""",
)


def _write_statement(limits: _Limits) -> str:
    """The redeem's write, holding every limit (_ENFORCED) or recording an offline
    redemption past them (_PAST_LIMITS)."""
    return f"""
WITH {_INPUT}, gate AS (
    -- Rule 2: the key's lock, and no live answer to it (migration 0023); a ledger writer.
    SELECT youdai_redeem_gate(i.lock_id, {LEDGER_WRITER[0]}, {LEDGER_WRITER[1]},
                              i.partner_id, i.idempotency_key,
                              i.now - $19::interval) AS state
    FROM input i
), voucher AS (
    -- Rule 1: a voucher is never used more times than allowed. Each counter moves only
    -- within its limit, judged on the row as it is once locked, in the one order
    -- (voucher, count, offer) reversals take them in.
    UPDATE vouchers v
    SET {limits.voucher_set}, updated_at = i.now
    FROM input i
    WHERE v.id = $1 AND (SELECT state FROM gate) = 'free'{limits.voucher_limit}
    RETURNING v.uses_left
), usage AS (
    -- Rule 1: the holder's uses in this period stay within the offer's holder limit.
    INSERT INTO holder_offer_usage AS u (holder_id, offer_id, period_start, uses)
    SELECT i.holder_id, i.offer_id, i.period_start, 1 FROM input i, voucher
    WHERE i.period_start IS NOT NULL
    ON CONFLICT (holder_id, offer_id, period_start)
    DO UPDATE SET uses = u.uses + 1{limits.holder_limit}
    RETURNING uses
), ledger AS (
    -- Rules 2 and 3: the redemption, with the key it answers and what it answered.
    INSERT INTO redemptions
        (id, voucher_id, offer_id, partner_id, holder_id, holder_category, scanner_key_id,
         purchase_amount, discount_amount, payable_amount, budget_cost, holder_period_start,
         reference, created_at, local_day, idempotency_key, request_hash, uses_left,
         offline_at, conflict)
    SELECT i.redemption_id, i.voucher_id, i.offer_id, i.partner_id, i.holder_id,
           i.holder_category, i.scanner_key_id, i.purchase_amount, i.discount_amount,
           i.payable_amount, i.budget_cost, i.period_start, i.reference, i.now, i.local_day,
           i.idempotency_key, i.request_hash, voucher.uses_left, i.offline_at, i.conflict
    FROM input i, voucher
    WHERE i.period_start IS NULL OR EXISTS (SELECT 1 FROM usage)
    RETURNING id, voucher_id, offer_id, partner_id, purchase_amount, discount_amount,
              payable_amount, reference, created_at, uses_left, offline_at, conflict
), offer AS (
    -- Rule 1: never one use past total_redemptions, never one fen past the budget. Last:
    -- every till of a busy offer waits for this row's lock, held to the commit, so the
    -- ledger row is written before it is taken, not while it is held.
    UPDATE offers o SET redeemed_count = o.redeemed_count + 1,
        spent = o.spent + i.budget_cost{limits.conflict_counts}
    FROM input i
    WHERE o.id = $3{limits.offer_limits} AND EXISTS (SELECT 1 FROM ledger)
    RETURNING o.id
)
SELECT (SELECT state FROM gate) AS gate, l.*,
       -- All of it or nothing: a voucher use with no offer use (another request reached
       -- a later limit first) undoes the statement, ledger row and all (migration 0023).
       youdai_written_whole(EXISTS (SELECT 1 FROM offer) OR NOT EXISTS (SELECT 1 FROM voucher))
           AS whole
FROM input i LEFT JOIN ledger l ON true
"""


#: The one statement that redeems, its own transaction, on what the rules allowed on the
#: read: the key's lock and no answer to it yet, then each counter moved only within its
#: limit as the locked row stands (voucher, holder's period count, offer: the order
#: reversals take them in), with the ledger row and the key it answers written before
#: the offer's row, the one every till of a busy offer waits for. Its one row says
#: which: the redemption, or nothing written and the gate's word (`in_use`, `answered`;
#: or `free`: another request reached a limit first — when that limit was the count's
#: or the offer's, the voucher's use and the ledger row already written are undone with
#: the statement, by youdai_written_whole).
_WRITE = _write_statement(_ENFORCED)
_RECORD_CONFLICT = _write_statement(_PAST_LIMITS)


@dataclass(frozen=True, slots=True)
class Written:
    """The write's outcome: the redemption, or why none was written."""

    redeemed: Redeemed | None
    #: The key's gate: "free" (then a limit refused, if nothing was written), "in_use"
    #: (another request with the key runs now), "answered" (one has just answered it).
    gate: str


#: SQLSTATE of youdai_written_whole (migration 0023): the statement was undone.
WRITTEN_IN_PART = "YD001"


async def write(conn: asyncpg.Connection, redemption: RedemptionWrite) -> Written:
    """Write one redemption judged on `begin`'s facts: all of it, or nothing (_WRITE). An
    offline redemption with a conflict is recorded past every limit (_RECORD_CONFLICT)."""
    statement = _WRITE if redemption.conflict is None else _RECORD_CONFLICT
    try:
        row = await conn.fetchrow(statement, *redemption.args())
    except asyncpg.PostgresError as error:
        if error.sqlstate != WRITTEN_IN_PART:
            raise
        return Written(None, "free")  # undone: a count appeared meanwhile; judge again
    return Written(_redeemed(row), row["gate"])


# --- refusals: kept for replay, logged ----------------------------------------------------


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


_STORE_REFUSAL = f"""
WITH gate AS (
    -- Rule 2: kept only while no other request holds the key, nor has answered it.
    SELECT youdai_redeem_gate($1, {LEDGER_WRITER[0]}, {LEDGER_WRITER[1]}, $2, $3,
                              $6::timestamptz - $7::interval) AS state
), kept AS (
    INSERT INTO idempotency_keys
        (partner_id, key, request_hash, response_body, created_at)
    SELECT $2::text, $3::text, $4::bytea, $5::jsonb, $6::timestamptz FROM gate
    WHERE gate.state = 'free'
    ON CONFLICT (partner_id, key) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, response_status = NULL,
        response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at
), logged AS (
    INSERT INTO redemption_refusals
        (id, partner_id, offer_id, scanner_key_id, code, stage, created_at)
    SELECT $8::text, $9::text, $10::text, $11::text, $12::text, 'redeem', $6 FROM gate
    WHERE gate.state = 'free' AND $8::text IS NOT NULL
)
SELECT state FROM gate
"""


async def store_refusal(
    conn: asyncpg.Connection,
    partner_id: str,
    key: str,
    request_hash: bytes,
    problem: dict[str, Any],
    now: datetime,
    logged: Refusal | None,
) -> str:
    """Keep a refusal for replay, and log it when its voucher is known (`logged`): one
    statement. The key's gate as in `Written.gate`: kept only when "free"."""
    return str(
        await conn.fetchval(
            _STORE_REFUSAL,
            idempotency_lock_id(partner_id, key),
            partner_id,
            key,
            request_hash,
            problem,
            now,
            IDEMPOTENCY_RETENTION,
            *(
                (None,) * 5
                if logged is None
                else (
                    logged.id,
                    logged.partner_id,
                    logged.offer_id,
                    logged.scanner_key_id,
                    logged.code,
                )
            ),
        )
    )


# --- idempotency ------------------------------------------------------------------------


def idempotency_lock_id(partner_id: str, key: str) -> int:
    """A 64-bit advisory lock id for one (partner, key): held while its request runs."""
    digest = hashlib.blake2b(f"{partner_id}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def purge_idempotency_keys(conn: asyncpg.Connection) -> int:
    """Forget the refusals kept past their retention (a redemption's key is its ledger
    row's, answered again only while it is live)."""
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
class LedgerEntry(LedgerRow):
    """A redemption as read back, with its till and its reversal if any."""

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
    first), and whether it was already reversed. The transaction becomes a ledger writer
    first (migration 0021): its id comes with the voucher's lock, after the redemption
    committed, so the reversal follows its redemption in the log's order."""
    await enter_as_ledger_writer(conn)
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
