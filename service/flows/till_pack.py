"""The till pack (docs/api.md, GET /v1/till/pack): what a till needs to keep redeeming
while its network is down — its partner's active offers with their terms, the public
keys that verify tokens, and the vouchers it must refuse. Never anything about a holder
but voucher ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.db import offers as offers_db
from service.db import redemptions as redemptions_db
from service.db import vouchers as vouchers_db
from service.domain.auth import ScannerKey
from service.domain.errors import ApiError
from service.domain.language import Said
from service.domain.offers import Offer
from service.domain.periods import local_date
from service.domain.redemptions import OFFLINE_MAX_AHEAD
from service.domain.terms import Terms, terms_of_offer
from service.flows.keyring import Keyring

#: How long a pack may be used offline (docs/api.md): then the till stops redeeming
#: offline until it is online again.
PACK_LIFETIME = timedelta(hours=24)
#: A voucher that can no longer be used is listed while its newest token could still pass
#: a till's own check: until the token expires, and this much after, for a till whose
#: clock runs behind (the service refuses an offline_at ahead of its clock by more).
TOKEN_SKEW = OFFLINE_MAX_AHEAD


@dataclass(frozen=True, slots=True)
class PackOffer:
    offer: Offer
    terms: Terms


@dataclass(frozen=True, slots=True)
class TillPack:
    partner_id: str
    partner_name: str
    till_id: str
    till_label: str
    offers: list[PackOffer]
    jwks: dict[str, Any]
    revoked_vouchers: list[str]
    server_time: datetime
    valid_until: datetime


async def pack(
    pool: asyncpg.Pool, keyring: Keyring, tz: ZoneInfo, scanner: ScannerKey, now: datetime
) -> TillPack:
    """The pack as of `now`: the keys as /.well-known/jwks.json publishes them, then
    the till, its offers and the vouchers to refuse, read in one snapshot."""
    async with pool.acquire() as conn:
        jwks = await keyring.jwks(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            till = await redemptions_db.till_of(conn, scanner.key_id)
            if till is None:  # revoked between authentication and now
                raise ApiError("unauthenticated", Said("This key is not valid", "此密钥无效"))
            offers = await offers_db.active_offers(conn, scanner.partner_id)
            revoked = await vouchers_db.unusable_with_live_tokens(
                conn, scanner.partner_id, now - TOKEN_SKEW, now, local_date(now, tz)
            )
    return TillPack(
        partner_id=till.partner_id,
        partner_name=till.partner_name,
        till_id=till.key_id,
        till_label=till.label,
        offers=[PackOffer(offer, terms_of_offer(offer, tz)) for offer in offers],
        jwks=jwks,
        revoked_vouchers=revoked,
        server_time=now,
        valid_until=now + PACK_LIFETIME,
    )
