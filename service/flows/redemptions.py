"""Preview, redeem and reverse: the heart of the service.

A redeem reads like pretix's `perform_checkin`: one path from the command to the answer.
One read finds any answer the Idempotency-Key was given and the voucher with everything
the rules need (no lock: a refusal waits for no one); the rules are judged here, in the
domain's one order; one write — a statement that is its own transaction — takes the
key's lock, locks the rows, judges every limit again on them as they are and writes the
redemption (every counter within its limit, the ledger row with its key), or nothing.
When another request got there in between, the path runs again: its new read sees what
happened and the rules name the refusal. A refusal is kept for replay in one statement.
Two round trips; no row lock is held across one. The time comes in from the caller.

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
from service.db.redemptions import LedgerEntry, Redeemed, Till, TillEntry, VoucherFacts
from service.domain import codes, tokens
from service.domain.auth import Principal, ScannerKey
from service.domain.errors import ApiError, problem_to_keep
from service.domain.ids import new_id
from service.domain.language import Said
from service.domain.pagination import Page, PageRequest, page_of
from service.domain.periods import end_of_local_day, local_date, local_midnight, period_starts
from service.domain.pricing import CURRENCY
from service.domain.redemptions import (
    Grant,
    check_reversal,
    judge,
    judge_offline,
    limit_refusal,
    offline_at_problem,
)
from service.flows.keyring import Keyring

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a redeem answers: the redemption made, or, `replayed`, the first answer to its
    Idempotency-Key again — that redemption, or the refusal kept for it (`refused`: the
    problem's members as errors.problem_to_keep kept them; the API gives the status)."""

    redemption: dict[str, Any] | None
    refused: dict[str, Any] | None = None
    replayed: bool = False


def request_hash(body: dict[str, Any]) -> bytes:
    """What makes two requests "the same" for an Idempotency-Key: the validated body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).digest()


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
    now: datetime,
    at: datetime | None = None,
) -> Scanned:
    """Rule order 1 and 2 for a token (checked offline, with the published keys) or a
    voucher code (docs/product.md, looked up): a valid one, for this scanner's partner.

    A code comes with the one refusal that is raised at once, before any rule or stored
    answer: too_many_attempts, for a key that sent codes.MISS_LIMIT unknown codes this
    minute, or whose partner's keys together sent codes.PARTNER_MISS_LIMIT (counted in
    PostgreSQL, so every replica sees the same count). A code's times are judged as its
    token's would be, against the TTL configured now (codes.judge_times).

    `at`: the moment a token's times are judged at (default `now`): an offline
    redemption's token was checked by the till's clock when it was made (docs/rules.md)."""
    if "code" in body:
        return await _resolve_code(pool, settings, scanner, codes.normalise(body["code"]), now)
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
            now=now if at is None else at,
            max_lifetime=settings.token_ttl,
        )
    except ApiError as refusal:
        return Scanned(None, refusal)
    return Scanned(claims.voucher_id)


async def _resolve_code(
    pool: asyncpg.Pool, settings: Settings, scanner: ScannerKey, code: str, now: datetime
) -> Scanned:
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


def _known(facts: VoucherFacts | None, partner_id: str) -> VoucherFacts:
    """Rule 2 for a voucher read by id: it exists, and is this scanner's partner's."""
    if facts is None:
        raise ApiError(
            "token_invalid",
            Said("The voucher in this code does not exist", "此优待码对应的优待券不存在"),
        )
    if facts.partner_id != partner_id:
        raise ApiError("wrong_partner", tokens.WRONG_PARTNER)
    return facts


async def preview(
    pool: asyncpg.Pool,
    keyring: Keyring,
    settings: Settings,
    scanner: ScannerKey,
    body: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """What a redemption would grant now, or the first rule it would break. Writes no
    redemption and moves no counter; a refusal of a known voucher is logged (one row)."""
    voucher_id = (await scan(pool, keyring, settings, scanner, body, now)).voucher()
    tz = settings.timezone
    async with pool.acquire() as conn:
        facts = _known(
            await redemptions_db.read_facts(conn, voucher_id, period_starts(now, tz)),
            scanner.partner_id,
        )
        try:
            grant = judge(facts.rules, body["purchase_amount"], facts.holder_period_uses, now, tz)
        except ApiError as refusal:
            await record_refusal(conn, facts, scanner, refusal, "preview", now)
            raise
        last_redeemed_at = await redemptions_db.last_redeemed_at(conn, voucher_id)
    return {
        "offer": {"id": facts.offer_id, "title": facts.offer_title, "kind": facts.offer_kind},
        "purchase_amount": grant.quote.purchase_amount,
        "discount_amount": grant.quote.discount_amount,
        "payable_amount": grant.quote.payable_amount,
        "currency": CURRENCY,
        "uses_left": facts.rules.voucher_uses_left,
        "last_redeemed_at": last_redeemed_at,
    }


def _logged(
    facts: VoucherFacts | None, scanner: ScannerKey, refusal: ApiError, stage: str, now: datetime
) -> redemptions_db.Refusal | None:
    """A refused redemption of a known voucher as kept, as pretix keeps failed scans: when,
    which offer, which till key, which problem; nothing about the holder. Bad input (a
    priced offer sent without an amount) is not a refused voucher."""
    if facts is None or refusal.code == "validation_error":
        return None
    return redemptions_db.Refusal(
        id=new_id("refusal"),
        partner_id=facts.partner_id,
        offer_id=facts.offer_id,
        scanner_key_id=scanner.key_id,
        code=refusal.code,
        stage=stage,
        created_at=now,
    )


async def record_refusal(
    conn: asyncpg.Connection,
    facts: VoucherFacts,
    scanner: ScannerKey,
    refusal: ApiError,
    stage: str,
    now: datetime,
) -> None:
    """Log a refused preview (`_logged`). One INSERT, and it never changes the answer: if
    it fails, the refusal is still what is said."""
    logged = _logged(facts, scanner, refusal, stage, now)
    if logged is None:
        return
    try:
        await redemptions_db.record_refusal(conn, logged)
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

    def judged_at(self, now: datetime) -> datetime:
        """When the rules are judged: when an offline till made it (an offline_at out of
        bounds is refused with the token's rules, and never used), else now."""
        if self.offline_at is None or self.scanned.refusal is not None:
            return now
        return self.offline_at


async def redeem(
    pool: asyncpg.Pool,
    keyring: Keyring,
    settings: Settings,
    scanner: ScannerKey,
    body: dict[str, Any],
    idempotency_key: str,
    now: datetime,
) -> Outcome:
    """Redeem once, whatever happens to the caller meanwhile (see module docstring).
    With `offline_at` in the body, a till's offline redemption (docs/rules.md)."""
    offline_at: datetime | None = body.get("offline_at")
    # An offline_at out of bounds is refused where the token's rules come (after a stored
    # answer, which a retry still gets); its token is not judged at such a moment.
    out_of_bounds = None if offline_at is None else offline_at_problem(offline_at, now)
    command = RedeemCommand(
        scanner=scanner,
        scanned=(
            Scanned(None, out_of_bounds)
            if out_of_bounds is not None
            else await scan(pool, keyring, settings, scanner, body, now, offline_at)
        ),
        purchase_amount=body["purchase_amount"],
        reference=body.get("reference") or "",
        idempotency_key=idempotency_key,
        fingerprint=request_hash(_comparable(body)),
        offline_at=offline_at,
    )
    work = asyncio.ensure_future(_redeem(pool, settings.timezone, command, now))
    return await asyncio.shield(work)


class _Refused(Exception):
    """A rule refused: nothing was written; the refusal is kept for replay, then raised."""

    def __init__(self, problem: ApiError, facts: VoucherFacts | None) -> None:
        super().__init__(problem.code)
        self.problem = problem
        self.facts = facts  # the voucher, when it is known: the refusal is logged


#: Attempts of one redeem whose write found that another request got there first (a
#: limit reached, the key answered): the next read sees what it did, as it committed.
ATTEMPTS = 3


async def _redeem(
    pool: asyncpg.Pool, tz: ZoneInfo, command: RedeemCommand, now: datetime
) -> Outcome:
    """The one path: read, the rules in order, write; or the refusal, kept."""
    conflict: str | None = None  # an offline redemption's, found by a race lost
    async with pool.acquire() as conn:
        for attempt in range(1, ATTEMPTS + 1):
            start = await redemptions_db.begin(
                conn,
                command.scanned.voucher_id,
                command.partner_id,
                command.idempotency_key,
                period_starts(command.judged_at(now), tz),  # the holder's period then
                now,
            )
            try:
                decided = _decide(start, command, now, tz)
                if isinstance(decided, Outcome):
                    return decided
                facts, grant, broken = decided
                written = await redemptions_db.write(
                    conn, _write_of(facts, command, grant, now, tz, broken or conflict)
                )
                if written.redeemed is not None:
                    return Outcome(created_body(written.redeemed))
                if written.gate == "in_use":
                    raise _key_in_use()
                if written.gate == "answered" and attempt < ATTEMPTS:
                    continue  # the next read replays it
                # Another request reached a limit first: the next read names it.
                limit = limit_refusal(
                    facts.rules, grant, facts.holder_period_uses, facts.offer_status
                )
                if attempt < ATTEMPTS:
                    conflict = limit.code if command.offline_at is not None else None
                    continue
                raise _Refused(limit, facts)
            except _Refused as refused:
                gate = await _keep(conn, command, refused, now)
                if gate == "in_use":
                    raise _key_in_use() from None
                if gate == "answered" and attempt < ATTEMPTS:
                    continue  # answered meanwhile: the next read replays it
                raise refused.problem from None
    raise AssertionError("the last attempt answers")


def _decide(
    start: redemptions_db.RedeemStart, command: RedeemCommand, now: datetime, tz: ZoneInfo
) -> Outcome | tuple[VoucherFacts, Grant, str | None]:
    """pretix's check-in order: the key's first answer, then the rules in the domain's
    order (docs/rules.md) — the grant, or the first rule broken (_Refused). An
    offline redemption is judged at its offline_at, and a broken rule (after the token
    and the price) is the conflict it is recorded with, not a refusal."""
    if start.answered is not None:
        return _replay(start.answered, command)
    if command.scanned.refusal is not None:  # token and partner, checked when scanned
        raise _Refused(command.scanned.refusal, None)
    try:
        facts = _known(start.voucher, command.partner_id)
    except ApiError as refusal:
        raise _Refused(refusal, None) from None
    try:
        if command.offline_at is not None:
            return (
                facts,
                *judge_offline(
                    facts.rules,
                    command.purchase_amount,
                    facts.holder_period_uses,
                    command.offline_at,
                    tz,
                ),
            )
        grant = judge(facts.rules, command.purchase_amount, facts.holder_period_uses, now, tz)
    except ApiError as refusal:
        raise _Refused(refusal, facts) from None
    return facts, grant, None


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The body as request_hash compares it: an instant in one spelling (UTC)."""
    if body.get("offline_at") is None:
        return body
    return {**body, "offline_at": body["offline_at"].astimezone(UTC).isoformat()}


def _key_in_use() -> ApiError:
    return ApiError(
        "idempotency_key_in_use",
        Said(
            "A request with this Idempotency-Key is still running",
            "使用此 Idempotency-Key 的请求仍在处理中",
        ),
    )


def _replay(answered: redemptions_db.StoredAnswer, command: RedeemCommand) -> Outcome:
    """The first answer to an Idempotency-Key again, if the request is the same one."""
    if answered.request_hash != command.fingerprint:
        raise ApiError(
            "idempotency_key_reused",
            Said(
                "This Idempotency-Key was used with a different request; use a new key",
                "此 Idempotency-Key 已用于另一个请求：请使用新的键",
            ),
        )
    if answered.redeemed is not None:
        return Outcome(created_body(answered.redeemed), replayed=True)
    kept = answered.body
    assert kept is not None
    if "code" not in kept:  # a redemption's answer, kept before migration 0022
        return Outcome(kept, replayed=True)
    return Outcome(None, kept, replayed=True)


def created_body(redeemed: Redeemed) -> dict[str, Any]:
    """The 201 of a redemption, from its ledger row: first answered and replayed alike."""
    return {
        "id": redeemed.id,
        "voucher_id": redeemed.voucher_id,
        "offer_id": redeemed.offer_id,
        "partner_id": redeemed.partner_id,
        "purchase_amount": redeemed.purchase_amount,
        "discount_amount": redeemed.discount_amount,
        "payable_amount": redeemed.payable_amount,
        "currency": CURRENCY,
        "status": "completed",
        "reference": redeemed.reference,
        "created_at": redeemed.created_at.isoformat(),
        "uses_left": redeemed.uses_left,
        "offline_at": None if redeemed.offline_at is None else redeemed.offline_at.isoformat(),
        "conflict": redeemed.conflict,
    }


def _write_of(
    facts: VoucherFacts,
    command: RedeemCommand,
    grant: Grant,
    now: datetime,
    tz: ZoneInfo,
    conflict: str | None,
) -> redemptions_db.RedemptionWrite:
    return redemptions_db.RedemptionWrite(
        redemption_id=new_id("redemption"),
        voucher=facts,
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
        offline_at=command.offline_at,
        conflict=conflict,
    )


async def _keep(
    conn: asyncpg.Connection, command: RedeemCommand, refused: _Refused, now: datetime
) -> str:
    """Keep a refusal for replay, and log it if its voucher is known: one statement. It
    never changes the answer; the key's gate ("free" if it could not be kept)."""
    problem = refused.problem
    try:
        return await redemptions_db.store_refusal(
            conn,
            command.partner_id,
            command.idempotency_key,
            command.fingerprint,
            problem_to_keep(problem),
            now,
            _logged(refused.facts, command.scanner, problem, "redeem", now),
        )
    except (TimeoutError, asyncpg.PostgresError, OSError) as error:
        log.warning("refusal not kept", extra={"code": problem.code, "error": str(error)})
        return "free"


async def reverse(
    pool: asyncpg.Pool,
    settings: Settings,
    caller: Principal,
    redemption_id: str,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """Reverse a redemption once: the use, the budget and the period count come back."""
    async with pool.acquire() as conn, conn.transaction():
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
    pool: asyncpg.Pool, settings: Settings, scanner: ScannerKey, page: PageRequest, now: datetime
) -> Page[TillEntry]:
    """This scanner key's own redemptions of today (programme time zone), newest first:
    what a till may reverse on a refund. Other keys' redemptions, even of the same
    partner, are not shown (a partner key lists them all with GET /v1/redemptions)."""
    assert scanner.key_id is not None
    today = local_date(now, settings.timezone)
    since = local_midnight(today, settings.timezone)
    until = end_of_local_day(today, settings.timezone)
    async with pool.acquire() as conn:
        rows = await redemptions_db.scanner_day(conn, page, scanner.key_id, since, until)
    return page_of(rows, page)
