"""Preview, redeem and reverse: the heart of the service.

Redeem runs in one transaction: the Idempotency-Key's advisory lock, the voucher row
lock, the rule checks, and one statement that moves every counter within its limit and
appends the ledger row, the rollup and the idempotency answer. Either all of it
commits or none of it does. A refusal rolls everything back and is then stored on its
own for replay.

The common case takes a shorter way with the same guarantees (`_redeem_at_once`): one
unlocked read, the rules, and one statement that is its own transaction, re-checks
under row locks whatever a concurrent request may have changed, and writes all or
nothing. Two round trips instead of six: under load, round trips are what a redeem
costs. Anything but a clean success (a refusal, a key in use, a race lost) leaves
that way having written nothing and is answered in steps as above.

The work runs shielded from cancellation: a till that gives up mid-request never
leaves half a redemption, and its retry with the same key gets the first answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.config import Settings
from service.db import audit as audit_db
from service.db import redemptions as redemptions_db
from service.db import voucher_codes as voucher_codes_db
from service.db.redemptions import LedgerEntry, Till, TillEntry
from service.domain import codes, tokens
from service.domain.auth import Principal, ScannerKey
from service.domain.errors import ApiError, problem_to_store
from service.domain.ids import new_id
from service.domain.language import Said
from service.domain.pagination import Page, PageRequest, page_of
from service.domain.periods import end_of_local_day, local_date, local_midnight, period_starts
from service.domain.pricing import CURRENCY, PriceRule
from service.domain.redemptions import (
    Grant,
    RedemptionFacts,
    check_offline_at,
    check_reversal,
    judge,
    judge_offline,
    limit_refusal,
    offline_at_problem,
)
from service.flows.keyring import Keyring
from service.flows.vouchers import eligibility_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP-ready outcome: the first answer again when `replayed`."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def request_hash(body: dict[str, Any]) -> bytes:
    """What makes two requests "the same" for an Idempotency-Key: the validated body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).digest()


def to_facts(row: asyncpg.Record) -> RedemptionFacts:
    return RedemptionFacts(
        eligibility=eligibility_of(row),
        voucher_status=row["voucher_status"],
        voucher_uses_left=row["voucher_uses_left"],
        voucher_expires_at=row["voucher_expires_at"],
        price_rule=PriceRule(
            kind=row["kind"],
            percent_bp=row["percent_bp"],
            max_discount=row["max_discount"],
            amount_off=row["amount_off"],
            fixed_price=row["fixed_price"],
            nominal_value=row["nominal_value"],
            min_purchase=row["min_purchase"],
        ),
        holder_limit_count=row["holder_limit_count"],
        holder_limit_period=row["holder_limit_period"],
        total_redemptions=row["total_redemptions"],
        redeemed_count=row["redeemed_count"],
        budget=row["budget"],
        spent=row["spent"],
    )


async def _keys_for(pool: asyncpg.Pool, keyring: Keyring, token: str) -> Mapping[str, Any]:
    """The public keys to verify `token` with, reloaded if it names a key new to us.

    Fetched before a transaction starts, so a request never holds one pooled connection
    while waiting for another (which deadlocks a busy pool)."""
    try:
        kid = tokens.unverified_kid(token)
    except ApiError:
        kid = None  # malformed: verify() will say so, in rule order
    return await keyring.verifying_keys(pool, kid)


@dataclass(frozen=True, slots=True)
class Scanned:
    """The voucher a scanned token or code names, or the first of rules 1 and 2 (token,
    partner) it broke, kept to be raised where those rules come: after a stored answer."""

    voucher_id: str | None
    refusal: ApiError | None = None

    def voucher(self) -> str:
        if self.refusal is not None:
            raise self.refusal
        assert self.voucher_id is not None
        return self.voucher_id


async def scan(
    pool: asyncpg.Pool,
    keyring: Keyring,
    settings: Settings,
    scanner: ScannerKey,
    body: Mapping[str, Any],
    at: datetime | None = None,
) -> Scanned:
    """Rule order 1 and 2 for a token (checked offline, with the published keys) or a
    voucher code (docs/product.md, looked up): a valid one, for this scanner's partner.

    A code comes with the one refusal that is raised at once, before any rule or stored
    answer: too_many_attempts, for a key that sent codes.MISS_LIMIT unknown codes this
    minute, or whose partner's keys together sent codes.PARTNER_MISS_LIMIT (counted in
    PostgreSQL, so every replica sees the same count). A code's times are judged as its
    token's would be, against the TTL configured now (codes.judge_times).

    `at`: the moment a token's times are judged at (default now): an offline redemption's
    token was checked by the till's clock when it was made (docs/rules.md)."""
    if "code" in body:
        return await _resolve_code(pool, settings, scanner, codes.normalise(body["code"]))
    token = body["token"]
    keys = (
        await _keys_for(pool, keyring, token)
        if at is None
        else await keyring.verifying_keys_at(pool, at)
    )
    try:
        claims = tokens.verify(
            token,
            keys=keys,
            issuer=settings.issuer,
            audience=scanner.partner_id,
            now=at,
            max_lifetime=settings.token_ttl,
        )
    except ApiError as refusal:
        return Scanned(None, refusal)
    return Scanned(claims.voucher_id)


async def _resolve_code(
    pool: asyncpg.Pool, settings: Settings, scanner: ScannerKey, code: str
) -> Scanned:
    now = datetime.now(UTC)
    minute = codes.minute_of(now)
    async with pool.acquire() as conn:
        found = await voucher_codes_db.lookup(
            conn, codes.digest(code), scanner.key_id, scanner.partner_id, minute
        )
        if codes.is_blocked(found.misses, found.partner_misses):
            raise codes.too_many_misses(now, by_partner=found.misses < codes.MISS_LIMIT)
        if found.voucher_id is None:
            await voucher_codes_db.count_miss(conn, scanner.key_id, scanner.partner_id, minute)
            return Scanned(
                None,
                ApiError(
                    "token_invalid",
                    Said(
                        "No voucher has this code; open the voucher again",
                        "没有优待券使用此优待码：请重新打开优待券",
                    ),
                ),
            )
    assert found.issued_at is not None and found.expires_at is not None
    # Valid exactly as long as the token minted with it, judged as that token would be.
    refusal = codes.judge_times(found.issued_at, found.expires_at, now, settings.token_ttl)
    if refusal is not None:
        return Scanned(None, refusal)
    if found.partner_id != scanner.partner_id:
        return Scanned(None, ApiError("wrong_partner", tokens.WRONG_PARTNER))
    return Scanned(found.voucher_id)


def _scanner_facts(row: asyncpg.Record | None, partner_id: str) -> asyncpg.Record:
    if row is None:
        raise ApiError(
            "token_invalid",
            Said("The voucher in this code does not exist", "此优待码对应的优待券不存在"),
        )
    if row["partner_id"] != partner_id:
        raise ApiError("wrong_partner", tokens.WRONG_PARTNER)
    return row


async def preview(
    pool: asyncpg.Pool,
    keyring: Keyring,
    settings: Settings,
    scanner: ScannerKey,
    body: Mapping[str, Any],
) -> dict[str, Any]:
    """What a redemption would grant now, or the first rule it would break. Writes no
    redemption and moves no counter; a refusal of a known voucher is logged (one row)."""
    voucher_id = (await scan(pool, keyring, settings, scanner, body)).voucher()
    now = datetime.now(UTC)
    tz = settings.timezone
    async with pool.acquire() as conn:
        row = _scanner_facts(
            await redemptions_db.facts_with_uses(
                conn, voucher_id, period_starts(now, tz), lock=False
            ),
            scanner.partner_id,
        )
        facts = to_facts(row)
        try:
            grant = judge(facts, body["purchase_amount"], row["holder_period_uses"], now, tz)
        except ApiError as refusal:
            await record_refusal(conn, row, scanner, refusal, "preview")
            raise
        last_redeemed_at = await redemptions_db.last_redeemed_at(conn, voucher_id)
    return {
        "offer": {"id": row["offer_id"], "title": row["offer_title"], "kind": row["kind"]},
        "purchase_amount": grant.quote.purchase_amount,
        "discount_amount": grant.quote.discount_amount,
        "payable_amount": grant.quote.payable_amount,
        "currency": CURRENCY,
        "uses_left": facts.voucher_uses_left,
        "last_redeemed_at": last_redeemed_at,
    }


async def record_refusal(
    conn: asyncpg.Connection,
    row: Mapping[str, Any],
    scanner: ScannerKey,
    refusal: ApiError,
    stage: str,
) -> None:
    """Keep a refused redemption of a known voucher, as pretix keeps failed scans: when,
    which offer, which till key, which problem; nothing about the holder. One INSERT,
    and it never changes the answer: if it fails, the refusal is still what is said."""
    if refusal.code == "validation_error":
        return  # bad input (a priced offer sent without an amount), not a refused voucher
    try:
        await redemptions_db.record_refusal(
            conn,
            redemptions_db.Refusal(
                id=new_id("refusal"),
                partner_id=row["partner_id"],
                offer_id=row["offer_id"],
                scanner_key_id=scanner.key_id,
                code=refusal.code,
                stage=stage,
                created_at=datetime.now(UTC),
            ),
        )
    except (TimeoutError, asyncpg.PostgresError, OSError) as error:
        log.warning("refusal not recorded", extra={"code": refusal.code, "error": str(error)})


@dataclass(frozen=True, slots=True)
class RedeemCommand:
    """One POST /v1/redemptions: who scanned what, for how much, under which key."""

    scanner: ScannerKey
    scanned: Scanned
    purchase_amount: int
    reference: str
    idempotency_key: str
    fingerprint: bytes  # request_hash of the body: "the same request" for the key
    offline_at: datetime | None = None  # made by a till offline, sent now (docs/rules.md)

    @property
    def partner_id(self) -> str:
        return self.scanner.partner_id


async def redeem(
    pool: asyncpg.Pool,
    keyring: Keyring,
    settings: Settings,
    scanner: ScannerKey,
    body: dict[str, Any],
    idempotency_key: str,
) -> Answer:
    """Redeem once, whatever happens to the caller meanwhile (see module docstring)."""
    work = asyncio.ensure_future(_redeem(pool, keyring, settings, scanner, body, idempotency_key))
    return await asyncio.shield(work)


async def _redeem(
    pool: asyncpg.Pool,
    keyring: Keyring,
    settings: Settings,
    scanner: ScannerKey,
    body: dict[str, Any],
    key: str,
) -> Answer:
    offline_at: datetime | None = body.get("offline_at")
    # An offline_at out of bounds is refused where the token's rules come (after a stored
    # answer, which a retry still gets); its token is not judged at such a moment.
    out_of_bounds = (
        None if offline_at is None else offline_at_problem(offline_at, datetime.now(UTC))
    )
    command = RedeemCommand(
        scanner=scanner,
        scanned=(
            Scanned(None, out_of_bounds)
            if out_of_bounds is not None
            else await scan(pool, keyring, settings, scanner, body, offline_at)
        ),
        purchase_amount=body["purchase_amount"],
        reference=body.get("reference") or "",
        idempotency_key=key,
        fingerprint=request_hash(_comparable(body)),
        offline_at=offline_at,
    )
    if offline_at is not None:
        return await _redeem_in_steps(pool, settings.timezone, command)
    answer = await _redeem_at_once(pool, settings.timezone, command)
    if answer is not None:
        return answer
    return await _redeem_in_steps(pool, settings.timezone, command)


async def _redeem_at_once(
    pool: asyncpg.Pool, tz: ZoneInfo, command: RedeemCommand
) -> Answer | None:
    """The common case in two round trips: a redemption that every rule allows, or the
    replay of a stored answer. None for anything else (a refusal, a key in use, a race
    lost part-way), which `_redeem_in_steps` then answers in the documented order
    (docs/rules.md); this path has written nothing in that case.

    One unlocked read gives the facts, the holder's period count and any stored answer;
    the rules run on them; then one statement (its own transaction) re-checks under row
    locks whatever a concurrent request can change and writes everything, or nothing.
    """
    if command.scanned.refusal is not None:
        return None  # a stored answer comes before the token's rules: in steps
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        row = await redemptions_db.facts_and_answer(
            conn,
            command.scanned.voucher(),
            command.partner_id,
            command.idempotency_key,
            period_starts(now, tz),
        )
        if row is None or row["partner_id"] != command.partner_id:
            return None
        if row["stored_status"] is not None:
            return _stored(
                row["stored_request_hash"], row["stored_status"], row["stored_body"], command
            )
        try:
            grant = judge(
                to_facts(row), command.purchase_amount, row["holder_period_uses"], now, tz
            )
        except ApiError:
            return None
        write = _ledger_write(row, command, grant, now, tz)
        written = await redemptions_db.redeem_at_once(conn, write)
    return None if written is None else _created(write, written)


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The body as request_hash compares it: an instant in one spelling (UTC)."""
    if body.get("offline_at") is None:
        return body
    return {**body, "offline_at": body["offline_at"].astimezone(UTC).isoformat()}


def _stored(
    stored_hash: bytes, status: int, body: dict[str, Any], command: RedeemCommand
) -> Answer:
    """The first answer to an Idempotency-Key again, if the request is the same one."""
    if bytes(stored_hash) != command.fingerprint:
        raise ApiError(
            "idempotency_key_reused",
            Said(
                "This Idempotency-Key was used with a different request; use a new key",
                "此 Idempotency-Key 已用于另一个请求：请使用新的键",
            ),
        )
    return Answer(status, body, replayed=True)


def _ledger_write(
    row: asyncpg.Record,
    command: RedeemCommand,
    grant: Grant,
    now: datetime,
    tz: ZoneInfo,
    conflict: str | None = None,
) -> redemptions_db.LedgerWrite:
    """What both ways of redeeming write: the ledger row, counters and stored answer
    (the 201 body; the statement adds uses_left). An offline redemption is judged at
    its offline_at and may carry the conflict it is recorded with."""
    offline_at = command.offline_at
    answer = {
        "id": new_id("redemption"),
        "voucher_id": row["voucher_id"],
        "offer_id": row["offer_id"],
        "partner_id": command.partner_id,
        "purchase_amount": grant.quote.purchase_amount,
        "discount_amount": grant.quote.discount_amount,
        "payable_amount": grant.quote.payable_amount,
        "currency": CURRENCY,
        "status": "completed",
        "reference": command.reference,
        "created_at": now.isoformat(),
        "offline_at": None if offline_at is None else offline_at.isoformat(),
        "conflict": conflict,
    }
    return redemptions_db.LedgerWrite(
        redemption_id=answer["id"],
        facts=row,
        scanner_key_id=command.scanner.key_id,
        purchase_amount=grant.quote.purchase_amount,
        discount_amount=grant.quote.discount_amount,
        payable_amount=grant.quote.payable_amount,
        budget_cost=grant.budget_cost,
        holder_period_start=grant.holder_period_start,
        reference=command.reference,
        now=now,
        local_day=local_date(now, tz),
        idempotency_key=command.idempotency_key,
        request_hash=command.fingerprint,
        response_body=answer,
        judged_at=offline_at or now,
        offline_at=offline_at,
        conflict=conflict,
    )


def _created(write: redemptions_db.LedgerWrite, written: asyncpg.Record) -> Answer:
    """The 201: the answer stored with the write, uses_left as the write left it."""
    assert write.response_body is not None
    return Answer(201, {**write.response_body, "uses_left": written["uses_left"]})


async def _redeem_in_steps(pool: asyncpg.Pool, tz: ZoneInfo, command: RedeemCommand) -> Answer:
    """Every case, one step at a time in one transaction: the Idempotency-Key's lock, its
    stored answer, the voucher locked, the rules in order, the write; a refusal is
    stored for replay, and logged if the voucher is known (record_refusal)."""
    known: list[asyncpg.Record] = []  # the voucher's facts, once read
    in_transaction = _redeem_in_transaction if command.offline_at is None else _record_offline
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                return await in_transaction(conn, tz, command, known)
        except ApiError as refusal:
            # The transaction is rolled back: nothing of the redemption was written.
            if refusal.code in ("idempotency_key_in_use", "idempotency_key_reused"):
                raise
            await _store_refusal(conn, command, refusal)
            if known:
                await record_refusal(conn, known[0], command.scanner, refusal, "redeem")
            raise


async def _answered_before(conn: asyncpg.Connection, command: RedeemCommand) -> Answer | None:
    """The Idempotency-Key's lock for this transaction, and its stored answer if any."""
    partner_id, key = command.partner_id, command.idempotency_key
    if not await redemptions_db.try_lock_idempotency_key(conn, partner_id, key):
        raise ApiError(
            "idempotency_key_in_use",
            Said(
                "A request with this Idempotency-Key is still running",
                "使用此 Idempotency-Key 的请求仍在处理中",
            ),
        )
    stored = await redemptions_db.stored_answer(conn, partner_id, key)
    if stored is None:
        return None
    return _stored(
        stored["request_hash"], stored["response_status"], stored["response_body"], command
    )


async def _redeem_in_transaction(
    conn: asyncpg.Connection, tz: ZoneInfo, command: RedeemCommand, known: list[asyncpg.Record]
) -> Answer:
    answered = await _answered_before(conn, command)
    if answered is not None:
        return answered
    now = datetime.now(UTC)
    starts = period_starts(now, tz)
    # Judged first on an unlocked read: a refusal, most of what comes this way (a code
    # scanned again, a burst of scans of one), neither waits for the voucher's lock nor
    # holds it. What that read sees was true at one instant, as any answer is.
    await _judge_in_steps(conn, tz, command, starts, now, known, lock=False)
    # Granted: judged again under the voucher's lock, on what the write will find.
    row, grant = await _judge_in_steps(conn, tz, command, starts, now, known, lock=True)
    write = _ledger_write(row, command, grant, now, tz)
    written = await _write_or_nothing(conn, write)
    if written is None:
        # A concurrent redemption of another voucher moved a counter since the read (this
        # voucher is locked): the counters as they are now say which limit.
        latest = _scanner_facts(
            await redemptions_db.facts_with_uses(conn, row["voucher_id"], starts, lock=False),
            command.partner_id,
        )
        raise limit_refusal(
            to_facts(latest), grant, latest["holder_period_uses"], latest["offer_status"]
        )
    return _created(write, written)


async def _record_offline(
    conn: asyncpg.Connection, tz: ZoneInfo, command: RedeemCommand, known: list[asyncpg.Record]
) -> Answer:
    """An offline redemption (docs/rules.md): recorded whenever its token is valid for this
    partner and its price stands, judged at its offline_at; with the first rule it broke
    as its conflict. Without a conflict it is written as an online one is, within every
    limit; if a limit refuses that write (another voucher's redemption moved a counter
    since the read), the counters as they are now name the conflict."""
    answered = await _answered_before(conn, command)
    if answered is not None:
        return answered
    now = datetime.now(UTC)
    assert command.offline_at is not None
    check_offline_at(command.offline_at, now)
    starts = period_starts(command.offline_at, tz)
    row = _scanner_facts(
        await redemptions_db.facts_with_uses(conn, command.scanned.voucher(), starts, lock=True),
        command.partner_id,
    )
    known[:] = [row]
    grant, conflict = judge_offline(
        to_facts(row), command.purchase_amount, row["holder_period_uses"], command.offline_at, tz
    )
    if conflict is None:
        write = _ledger_write(row, command, grant, now, tz)
        written = await _write_or_nothing(conn, write)
        if written is not None:
            return _created(write, written)
        latest = await redemptions_db.facts_with_uses(conn, row["voucher_id"], starts, lock=False)
        assert latest is not None
        conflict = limit_refusal(
            to_facts(latest), grant, latest["holder_period_uses"], latest["offer_status"]
        ).code
    write = _ledger_write(row, command, grant, now, tz, conflict)
    return _created(write, await redemptions_db.record_conflict(conn, write))


class _NotWritten(Exception):
    """The redeem statement refused: leave its savepoint, undoing what it did write."""


async def _write_or_nothing(
    conn: asyncpg.Connection, write: redemptions_db.LedgerWrite
) -> asyncpg.Record | None:
    """The redeem statement in a savepoint. When a limit refuses it part-way, the writes it
    made before that (the voucher's use, the holder's period count) are undone at once, so
    that reading the counters again shows other requests' work, not this one's."""
    try:
        async with conn.transaction():
            written = await redemptions_db.redeem(conn, write)
            if written is None:
                raise _NotWritten
            return written
    except _NotWritten:
        return None


async def _judge_in_steps(
    conn: asyncpg.Connection,
    tz: ZoneInfo,
    command: RedeemCommand,
    starts: Mapping[str, datetime],
    now: datetime,
    known: list[asyncpg.Record],
    *,
    lock: bool,
) -> tuple[asyncpg.Record, Grant]:
    """The voucher's facts read (locked or not) and the rules run on them in order."""
    row = _scanner_facts(
        await redemptions_db.facts_with_uses(conn, command.scanned.voucher(), starts, lock=lock),
        command.partner_id,
    )
    known[:] = [row]  # the voucher is known: a refusal from here on is logged
    grant = judge(to_facts(row), command.purchase_amount, row["holder_period_uses"], now, tz)
    return row, grant


async def _store_refusal(
    conn: asyncpg.Connection, command: RedeemCommand, refusal: ApiError
) -> None:
    """Keep a refusal for replay, unless another request with the key holds it now."""
    async with conn.transaction():
        if await redemptions_db.try_lock_idempotency_key(
            conn, command.partner_id, command.idempotency_key
        ):
            await redemptions_db.store_answer(
                conn,
                command.partner_id,
                command.idempotency_key,
                command.fingerprint,
                refusal.status,
                problem_to_store(refusal),
            )


async def reverse(
    conn: asyncpg.Connection,
    settings: Settings,
    caller: Principal,
    redemption_id: str,
    reason: str,
) -> dict[str, Any]:
    """Reverse a redemption once: the use, the budget and the period count come back."""
    now = datetime.now(UTC)
    async with conn.transaction():
        row = await redemptions_db.lock_for_reversal(conn, redemption_id)
        if row is None or not caller.can_see_partner(row["partner_id"]):
            raise ApiError("not_found", Said("No such redemption", "没有此核销记录"))
        check_reversal(row["created_at"], row["reversed"], now, settings.reversal_window_days)
        await redemptions_db.lock_counters_for_reversal(conn, row)
        reversal_id = new_id("reversal")
        written = await redemptions_db.reverse(
            conn,
            reversal_id=reversal_id,
            redemption=row,
            reason=reason,
            actor=caller,
            now=now,
            local_day=local_date(now, settings.timezone),
        )
        if written is None:
            raise ApiError(
                "already_reversed",
                Said("The redemption has already been reversed", "此核销已被冲正"),
            )
        # A reversal changes the reported total: who did it, and why, is on the record.
        await audit_db.record(
            conn,
            caller,
            "redemption.reverse",
            "redemption",
            redemption_id,
            {
                "status": ["completed", "reversed"],
                "reversal_id": [None, reversal_id],
                "amount_given_back": [None, row["discount_amount"]],
                "reason": [None, reason],
            },
        )
    return {
        "id": reversal_id,
        "redemption_id": redemption_id,
        "discount_amount": row["discount_amount"],
        "currency": CURRENCY,
        "created_at": written["created_at"],
    }


# --- what a till and the programme see of refusals and of a till's day ------------------


async def list_refusals(
    pool: asyncpg.Pool,
    caller: Principal,
    page: PageRequest,
    filters: Mapping[str, Any],
    created_from: datetime | None,
    created_to: datetime | None,
) -> Page[redemptions_db.Refusal]:
    """Refused redemptions: a partner caller sees only its own (rule 5), the bureau all."""
    async with pool.acquire() as conn:
        rows = await redemptions_db.list_refusals(
            conn,
            page,
            partner_id=caller.partner_filter(filters.get("partner_id")),
            offer_id=filters.get("offer_id"),
            scanner_key_id=filters.get("scanner_key_id"),
            code=filters.get("code"),
            created_from=created_from,
            created_to=created_to,
        )
    return page_of(rows, page)


async def ledger(
    pool: asyncpg.Pool,
    caller: Principal,
    page: PageRequest,
    filters: Mapping[str, Any],
    created_from: datetime | None,
    created_to: datetime | None,
) -> Page[LedgerEntry]:
    """Redemptions: a partner caller sees its own partner's only (rule 5); another
    partner's partner_id or till key gives an empty page, as an unknown one does."""
    async with pool.acquire() as conn:
        rows = await redemptions_db.list_redemptions(
            conn,
            page,
            partner_id=caller.partner_filter(filters.get("partner_id")),
            offer_id=filters.get("offer_id"),
            scanner_key_id=filters.get("key_id"),
            status=filters.get("status"),
            created_from=created_from,
            created_to=created_to,
            offline=filters.get("offline"),
            conflict=filters.get("conflict"),
        )
    return page_of(rows, page)


async def get_redemption(pool: asyncpg.Pool, caller: Principal, redemption_id: str) -> LedgerEntry:
    """A partner caller sees its own partner's redemptions only (others: not_found)."""
    async with pool.acquire() as conn:
        row = await redemptions_db.get_redemption(conn, redemption_id)
    if row is None or not caller.can_see_partner(row.partner_id):
        raise ApiError("not_found", Said("No such redemption", "没有此核销记录"))
    return row


async def till(pool: asyncpg.Pool, scanner: ScannerKey) -> Till:
    """Whose till this scanner key is: its label and its partner's name."""
    async with pool.acquire() as conn:
        row = await redemptions_db.till_of(conn, scanner.key_id)
    if row is None:  # revoked between authentication and now
        raise ApiError("unauthenticated", Said("This key is not valid", "此密钥无效"))
    return row


async def till_today(
    pool: asyncpg.Pool, settings: Settings, scanner: ScannerKey, page: PageRequest
) -> Page[TillEntry]:
    """This scanner key's own redemptions of today (programme time zone), newest first:
    what a till may reverse on a refund. Other keys' redemptions, even of the same
    partner, are not shown (a partner key lists them all with GET /v1/redemptions)."""
    assert scanner.key_id is not None
    now = datetime.now(UTC)
    today = local_date(now, settings.timezone)
    since = local_midnight(today, settings.timezone)
    until = end_of_local_day(today, settings.timezone)
    async with pool.acquire() as conn:
        rows = await redemptions_db.scanner_day(conn, page, scanner.key_id, since, until)
    return page_of(rows, page)
