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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.config import Settings
from service.db import redemptions as redemptions_db
from service.domain import tokens
from service.domain.auth import Principal
from service.domain.errors import ApiError
from service.domain.ids import new_id
from service.domain.periods import PERIODS, local_date, period_start
from service.domain.pricing import PriceRule
from service.domain.redemptions import (
    Grant,
    RedemptionFacts,
    check_limits,
    check_redemption,
    check_reversal,
    limit_refusal,
)
from service.flows.vouchers import eligibility_of
from service.keyring import Keyring

CURRENCY = "CNY"


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


def _verified_claims(
    keys: Mapping[str, Any], settings: Settings, token: str, partner_id: str
) -> tokens.VoucherClaims:
    """Rule order 1 and 2: a valid token, for this scanner's partner."""
    return tokens.verify(token, keys=keys, issuer=settings.issuer, audience=partner_id)


def _scanner_facts(row: asyncpg.Record | None, partner_id: str) -> asyncpg.Record:
    if row is None:
        raise ApiError("token_invalid", "The voucher in this code does not exist")
    if row["partner_id"] != partner_id:
        raise ApiError("wrong_partner", "This voucher is for another partner")
    return row


async def preview(
    pool: asyncpg.Pool,
    keyring: Keyring,
    settings: Settings,
    scanner: Principal,
    token: str,
    purchase_amount: int,
) -> dict[str, Any]:
    """What a redemption would grant now, or the first rule it would break. Writes nothing."""
    keys = await _keys_for(pool, keyring, token)
    claims = _verified_claims(keys, settings, token, scanner.partner_id)
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        row = _scanner_facts(
            await redemptions_db.facts(conn, claims.voucher_id, lock=False), scanner.partner_id
        )
        facts = to_facts(row)
        grant = check_redemption(facts, purchase_amount, now, settings.timezone)
        uses = await redemptions_db.uses_in_period(
            conn, row["holder_id"], row["offer_id"], grant.holder_period_start
        )
    check_limits(facts, grant, uses)
    return {
        "offer": {"id": row["offer_id"], "title": row["offer_title"], "kind": row["kind"]},
        "purchase_amount": grant.quote.purchase_amount,
        "discount_amount": grant.quote.discount_amount,
        "payable_amount": grant.quote.payable_amount,
        "currency": CURRENCY,
        "uses_left": facts.voucher_uses_left,
    }


async def redeem(
    pool: asyncpg.Pool,
    keyring: Keyring,
    settings: Settings,
    scanner: Principal,
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
    scanner: Principal,
    body: dict[str, Any],
    key: str,
) -> Answer:
    partner_id = scanner.partner_id
    assert partner_id is not None and scanner.key_id is not None
    fingerprint = request_hash(body)
    keys = await _keys_for(pool, keyring, body["token"])
    answer = await _redeem_at_once(pool, keys, settings, scanner, body, key, fingerprint)
    if answer is not None:
        return answer
    return await _redeem_in_steps(pool, keys, settings, scanner, body, key, fingerprint)


async def _redeem_at_once(
    pool: asyncpg.Pool,
    keys: Mapping[str, Any],
    settings: Settings,
    scanner: Principal,
    body: dict[str, Any],
    key: str,
    fingerprint: bytes,
) -> Answer | None:
    """The common case in two round trips: a redemption that every rule allows, or the
    replay of a stored answer. None for anything else (a refusal, a key in use, a race
    lost part-way), which `_redeem_in_steps` then answers in the SPEC's order; this
    path has written nothing in that case.

    One unlocked read gives the facts, the holder's period count and any stored answer;
    the rules run on them; then one statement (its own transaction) re-checks under row
    locks whatever a concurrent request can change and writes everything, or nothing.
    """
    partner_id = scanner.partner_id
    try:
        claims = _verified_claims(keys, settings, body["token"], partner_id)
    except ApiError:
        return None  # a stored answer comes before the token's rules: in steps
    now = datetime.now(UTC)
    tz = settings.timezone
    async with pool.acquire() as conn:
        row = await redemptions_db.facts_and_answer(
            conn, claims.voucher_id, partner_id, key, {p: period_start(p, now, tz) for p in PERIODS}
        )
        if row is None or row["partner_id"] != partner_id:
            return None
        if row["stored_status"] is not None:
            return _stored(
                row["stored_request_hash"], row["stored_status"], row["stored_body"], fingerprint
            )
        facts = to_facts(row)
        try:
            grant = check_redemption(facts, body["purchase_amount"], now, tz)
            check_limits(facts, grant, row["holder_period_uses"])
        except ApiError:
            return None
        answer = _answer(row, partner_id, body, grant, now)
        written = await redemptions_db.redeem_at_once(
            conn, _ledger_write(row, scanner, grant, answer, now, tz, key, fingerprint)
        )
    if written is None:
        return None
    answer["uses_left"] = written["uses_left"]
    return Answer(201, answer)


def _stored(stored_hash: bytes, status: int, body: dict[str, Any], fingerprint: bytes) -> Answer:
    """The first answer to an Idempotency-Key again, if the request is the same one."""
    if bytes(stored_hash) != fingerprint:
        raise ApiError(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request; use a new key",
        )
    return Answer(status, body, replayed=True)


def _answer(
    row: asyncpg.Record, partner_id: str, body: dict[str, Any], grant: Grant, now: datetime
) -> dict[str, Any]:
    """The 201 body (without uses_left, which the write tells)."""
    return {
        "id": new_id("redemption"),
        "voucher_id": row["voucher_id"],
        "offer_id": row["offer_id"],
        "partner_id": partner_id,
        "purchase_amount": grant.quote.purchase_amount,
        "discount_amount": grant.quote.discount_amount,
        "payable_amount": grant.quote.payable_amount,
        "currency": CURRENCY,
        "status": "completed",
        "reference": body.get("reference") or "",
        "created_at": now.isoformat(),
    }


def _ledger_write(
    row: asyncpg.Record,
    scanner: Principal,
    grant: Grant,
    answer: dict[str, Any],
    now: datetime,
    tz: ZoneInfo,
    key: str,
    fingerprint: bytes,
) -> redemptions_db.LedgerWrite:
    """What both ways of redeeming write: the ledger row, counters and stored answer."""
    return redemptions_db.LedgerWrite(
        redemption_id=answer["id"],
        facts=row,
        scanner_key_id=scanner.key_id,
        purchase_amount=grant.quote.purchase_amount,
        discount_amount=grant.quote.discount_amount,
        payable_amount=grant.quote.payable_amount,
        budget_cost=grant.budget_cost,
        holder_period_start=grant.holder_period_start,
        reference=answer["reference"],
        now=now,
        local_day=local_date(now, tz),
        idempotency_key=key,
        request_hash=fingerprint,
        response_body=answer,
    )


async def _redeem_in_steps(
    pool: asyncpg.Pool,
    keys: Mapping[str, Any],
    settings: Settings,
    scanner: Principal,
    body: dict[str, Any],
    key: str,
    fingerprint: bytes,
) -> Answer:
    """Every case, one step at a time in one transaction: the Idempotency-Key's lock, its
    stored answer, the voucher locked, the rules in order, the write; a refusal is
    stored for replay."""
    partner_id = scanner.partner_id
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            answer = await _redeem_in_transaction(
                conn, keys, settings, scanner, body, key, fingerprint
            )
        except ApiError as refusal:
            await transaction.rollback()
            if refusal.code in ("idempotency_key_in_use", "idempotency_key_reused"):
                raise
            await _store_refusal(conn, partner_id, key, fingerprint, refusal)
            raise
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()
    return answer


async def _redeem_in_transaction(
    conn: asyncpg.Connection,
    keys: Mapping[str, Any],
    settings: Settings,
    scanner: Principal,
    body: dict[str, Any],
    key: str,
    fingerprint: bytes,
) -> Answer:
    partner_id = scanner.partner_id
    if not await redemptions_db.try_lock_idempotency_key(conn, partner_id, key):
        raise ApiError(
            "idempotency_key_in_use", "A request with this Idempotency-Key is still running"
        )
    stored = await redemptions_db.stored_answer(conn, partner_id, key)
    if stored is not None:
        return _stored(
            stored["request_hash"], stored["response_status"], stored["response_body"], fingerprint
        )

    claims = _verified_claims(keys, settings, body["token"], partner_id)
    now = datetime.now(UTC)
    row = _scanner_facts(await redemptions_db.facts(conn, claims.voucher_id, lock=True), partner_id)
    facts = to_facts(row)
    grant = check_redemption(facts, body["purchase_amount"], now, settings.timezone)
    answer = _answer(row, partner_id, body, grant, now)
    answer["uses_left"] = facts.voucher_uses_left - 1
    written = await redemptions_db.redeem(
        conn, _ledger_write(row, scanner, grant, answer, now, settings.timezone, key, fingerprint)
    )
    if written is None:
        uses = await redemptions_db.uses_in_period(
            conn, row["holder_id"], row["offer_id"], grant.holder_period_start
        )
        offer = await redemptions_db.offer_status(conn, row["offer_id"])
        latest = replace(facts, redeemed_count=offer["redeemed_count"], spent=offer["spent"])
        raise limit_refusal(latest, grant, uses, offer["status"])
    return Answer(201, answer)


async def _store_refusal(
    conn: asyncpg.Connection, partner_id: str, key: str, fingerprint: bytes, refusal: ApiError
) -> None:
    """Keep a refusal for replay, unless another request with the key holds it now."""
    async with conn.transaction():
        if await redemptions_db.try_lock_idempotency_key(conn, partner_id, key):
            await redemptions_db.store_answer(
                conn, partner_id, key, fingerprint, refusal.status, refusal.problem()
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
            raise ApiError("not_found", "No such redemption")
        check_reversal(row["created_at"], row["reversed"], now, settings.reversal_window_days)
        await redemptions_db.lock_counters_for_reversal(conn, row)
        reversal_id = new_id("reversal")
        written = await redemptions_db.reverse(
            conn,
            reversal_id=reversal_id,
            redemption=row,
            reason=reason,
            actor_id=caller.actor,
            actor_role=caller.actor_role,
            now=now,
            local_day=local_date(now, settings.timezone),
        )
        if written is None:
            raise ApiError("already_reversed", "The redemption has already been reversed")
    return {
        "id": reversal_id,
        "redemption_id": redemption_id,
        "discount_amount": row["discount_amount"],
        "currency": CURRENCY,
        "created_at": written["created_at"],
    }
