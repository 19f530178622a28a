"""Preview, redeem and reverse: the heart of the service.

Redeem runs in one transaction: the Idempotency-Key's advisory lock, the voucher row
lock, the rule checks, and one statement that moves every counter within its limit and
appends the ledger row, the rollup and the idempotency answer. Either all of it
commits or none of it does. A refusal rolls everything back and is then stored on its
own for replay.

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

import asyncpg

from service.config import Settings
from service.db import redemptions as redemptions_db
from service.domain import tokens
from service.domain.auth import Principal
from service.domain.errors import ApiError
from service.domain.ids import new_id
from service.domain.periods import local_date
from service.domain.pricing import PriceRule
from service.domain.redemptions import (
    RedemptionFacts,
    check_limits,
    check_redemption,
    check_reversal,
    limit_refusal,
)
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
        partner_status=row["partner_status"],
        voucher_status=row["voucher_status"],
        voucher_uses_left=row["voucher_uses_left"],
        voucher_expires_at=row["voucher_expires_at"],
        holder_status=row["holder_status"],
        holder_category=row["holder_category"],
        card_valid_until=row["card_valid_until"],
        offer_status=row["offer_status"],
        offer_starts_at=row["offer_starts_at"],
        offer_ends_at=row["offer_ends_at"],
        eligible_categories=tuple(row["eligible_categories"]),
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
        if bytes(stored["request_hash"]) != fingerprint:
            raise ApiError(
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request; use a new key",
            )
        return Answer(stored["response_status"], stored["response_body"], replayed=True)

    claims = _verified_claims(keys, settings, body["token"], partner_id)
    now = datetime.now(UTC)
    row = _scanner_facts(await redemptions_db.facts(conn, claims.voucher_id, lock=True), partner_id)
    facts = to_facts(row)
    grant = check_redemption(facts, body["purchase_amount"], now, settings.timezone)
    redemption_id = new_id("redemption")
    answer = {
        "id": redemption_id,
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
        "uses_left": facts.voucher_uses_left - 1,
    }
    written = await redemptions_db.redeem(
        conn,
        redemption_id=redemption_id,
        facts=row,
        scanner_key_id=scanner.key_id,
        purchase_amount=grant.quote.purchase_amount,
        discount_amount=grant.quote.discount_amount,
        payable_amount=grant.quote.payable_amount,
        budget_cost=grant.budget_cost,
        holder_period_start=grant.holder_period_start,
        reference=answer["reference"],
        now=now,
        local_day=local_date(now, settings.timezone),
        idempotency_key=key,
        request_hash=fingerprint,
        response_body=answer,
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
        reversal_id = new_id("reversal")
        written = await redemptions_db.reverse(
            conn,
            reversal_id=reversal_id,
            redemption=row,
            reason=reason,
            actor_id=caller.actor,
            actor_role=str(caller.role),
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
