"""Claiming vouchers and minting their tokens."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.clock import Clock, system_clock
from service.config import Settings
from service.db import voucher_codes as voucher_codes_db
from service.db import vouchers as vouchers_db
from service.domain import codes, tokens
from service.domain.auth import HolderSession, Principal
from service.domain.errors import ApiError
from service.domain.language import Said
from service.domain.pagination import Page, PageRequest, page_of
from service.domain.terms import terms_of_offer
from service.domain.vouchers import (
    Eligibility,
    HeldVoucher,
    OfferForHolder,
    check_claim,
    check_usable_now,
    effective_status,
    voucher_expiry,
)
from service.flows import holders as holders_flow
from service.flows.database import Database, connection
from service.flows.keyring import Keyring


async def claim(
    db: Database,
    settings: Settings,
    holder_id: str,
    offer_id: str,
    issued_by: str,
    *,
    clock: Clock = system_clock,
) -> tuple[HeldVoucher, bool]:
    """The holder's active voucher for the offer, creating it if needed: (voucher, created)."""
    now = clock()
    async with connection(db) as conn:
        async with conn.transaction():
            facts = await vouchers_db.eligibility_facts(conn, holder_id, offer_id)
            if facts is None:
                raise ApiError("not_found", Said("No such offer", "没有此优惠"))
            check_claim(Eligibility.of(facts), now, settings.timezone)
            existing = await vouchers_db.active_voucher_for_update(conn, holder_id, offer_id)
            if existing is not None:
                if effective_status("active", existing["expires_at"], now) == "active":
                    return await _written(conn, existing["id"]), False
                await vouchers_db.mark_expired(conn, existing["id"])
            voucher_id = await vouchers_db.insert_voucher(
                conn,
                holder_id=holder_id,
                offer_id=offer_id,
                partner_id=facts["partner_id"],
                uses=facts["uses_per_voucher"],
                expires_at=voucher_expiry(
                    now, facts["voucher_valid_days"], facts["offer_ends_at"], settings.timezone
                ),
                issued_by=issued_by,
            )
        if voucher_id is not None:
            return await _written(conn, voucher_id), True
        # A concurrent claim won the unique index; answer with its voucher.
        won_id = await vouchers_db.active_voucher_id(conn, holder_id, offer_id)
        if won_id is None:  # …and it was used up in the same instant
            raise ApiError(
                "conflict",
                Said(
                    "The voucher changed while claiming; claim again",
                    "领取时优待券发生了变化：请重新领取",
                ),
            )
        return await _written(conn, won_id), False


async def _written(conn: asyncpg.Connection, voucher_id: str) -> HeldVoucher:
    """A voucher this transaction has just found or written."""
    voucher = await vouchers_db.get_voucher(conn, voucher_id)
    assert voucher is not None
    return voucher


def as_shown(voucher: HeldVoucher, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """A voucher as its holder sees it `now`: the status accounts for expiry; its offer's
    terms are in words."""
    status = effective_status(voucher.status, voucher.expires_at, now)
    return {**asdict(voucher), "status": status, "offer": offer_as_shown(voucher.offer, tz)}


def offer_as_shown(offer: OfferForHolder, tz: ZoneInfo) -> dict[str, Any]:
    """An offer as a holder sees it, with its terms in words."""
    return {**asdict(offer), "terms": terms_of_offer(offer, tz)}


async def own_voucher(db: Database, holder: HolderSession, voucher_id: str) -> HeldVoucher:
    """The holder's voucher; another holder's is simply not found (rule 5)."""
    async with connection(db) as conn:
        voucher = await vouchers_db.get_voucher(conn, voucher_id, holder.holder_id)
    if voucher is None:
        raise ApiError("not_found", Said("No such voucher", "没有此优待券"))
    return voucher


async def holders_vouchers(
    db: Database, holder: HolderSession, page: PageRequest, status: str | None
) -> Page[HeldVoucher]:
    async with connection(db) as conn:
        return page_of(await vouchers_db.list_vouchers(conn, holder.holder_id, page, status), page)


async def offers_for(
    db: Database, holder: HolderSession, page: PageRequest
) -> Page[OfferForHolder]:
    """Active offers inside their window, of active partners, open to the holder's category."""
    async with connection(db) as conn:
        me = await holders_flow.get(conn, holder.holder_id)
        return page_of(await vouchers_db.offers_open_to(conn, me.category, page), page)


async def issue_at_desk(
    db: Database,
    settings: Settings,
    clerk: Principal,
    holder_id: str,
    offer_id: str,
    *,
    clock: Clock = system_clock,
) -> tuple[HeldVoucher, bool]:
    """A voucher issued by bureau staff to an enrolled holder, as the holder would claim it."""
    async with connection(db) as conn:
        await holders_flow.get(conn, holder_id)
        return await claim(conn, settings, holder_id, offer_id, issued_by=clerk.actor, clock=clock)


@dataclass(frozen=True, slots=True)
class Minted:
    """A fresh token and the voucher code minted with it, both valid until `expires_at`."""

    token: str
    code: str
    expires_at: datetime


async def mint_token(
    conn: asyncpg.Connection,
    keyring: Keyring,
    settings: Settings,
    voucher: HeldVoucher,
    *,
    clock: Clock = system_clock,
) -> Minted:
    """A fresh short-lived token for a usable voucher, and its voucher code (docs/product.md),
    which replaces the voucher's earlier code."""
    now = clock()
    await check_usable(conn, settings, voucher, now)
    key = await keyring.signing_key(conn)
    token, expires_at = tokens.mint(
        key,
        voucher_id=voucher.id,
        partner_id=voucher.partner_id,
        offer_id=voucher.offer_id,
        issuer=settings.issuer,
        ttl_seconds=settings.token_ttl,
        now=now,
    )
    # The token's `iat`: its `exp` less the lifetime it was minted with.
    issued_at = expires_at - timedelta(seconds=settings.token_ttl)
    for _ in range(3):  # a clash of two random 18-digit codes: about never
        code = codes.new_code()
        if await voucher_codes_db.store(
            conn, voucher.id, codes.digest(code), issued_at, expires_at
        ):
            return Minted(token, code, expires_at)
    raise ApiError(
        "conflict",
        Said(
            "No voucher code could be drawn; open the voucher again",
            "未能生成优待码：请重新打开优待券",
        ),
    )


async def check_usable(
    conn: asyncpg.Connection, settings: Settings, voucher: HeldVoucher, now: datetime
) -> None:
    """The rule's code when the voucher cannot be used now (its offer paused or
    ended, its partner suspended, …): nothing is minted or drawn for it (docs/api.md)."""
    facts = await vouchers_db.eligibility_facts(conn, voucher.holder_id, voucher.offer_id)
    assert facts is not None  # the voucher's own offer and holder
    check_usable_now(
        Eligibility.of(facts),
        voucher.status,
        voucher.uses_left,
        voucher.expires_at,
        now,
        settings.timezone,
    )


async def live_code_expiry(
    conn: asyncpg.Connection,
    settings: Settings,
    voucher: HeldVoucher,
    code: str,
    *,
    clock: Clock = system_clock,
) -> datetime:
    """When `code` stops being valid, if it is the voucher's live code and the voucher
    can be used now; else not_found, or the rule it breaks."""
    await check_usable(conn, settings, voucher, clock())
    if not codes.is_code(code):
        raise ApiError(
            "not_found", Said("This is not the voucher's code", "这不是此优待券的优待码")
        )
    expires_at = await voucher_codes_db.live_expiry(conn, voucher.id, codes.digest(code))
    if expires_at is None:
        raise ApiError(
            "not_found",
            Said(
                "This is not the voucher's live code; open the voucher again",
                "这不是此优待券当前的优待码：请重新打开优待券",
            ),
        )
    return expires_at


async def own_token(
    db: Database,
    keyring: Keyring,
    settings: Settings,
    holder: HolderSession,
    voucher_id: str,
    *,
    clock: Clock = system_clock,
) -> Minted:
    """A fresh token for one of the holder's own vouchers (another's is not found)."""
    async with connection(db) as conn:
        voucher = await own_voucher(conn, holder, voucher_id)
        return await mint_token(conn, keyring, settings, voucher, clock=clock)


async def own_code_expiry(
    db: Database,
    settings: Settings,
    holder: HolderSession,
    voucher_id: str,
    code: str,
    *,
    clock: Clock = system_clock,
) -> datetime:
    """`live_code_expiry` of one of the holder's own vouchers (another's is not found)."""
    async with connection(db) as conn:
        voucher = await own_voucher(conn, holder, voucher_id)
        return await live_code_expiry(conn, settings, voucher, code, clock=clock)
