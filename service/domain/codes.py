"""Voucher codes (docs/product.md): 18 digits a till can type or read from a 1D barcode.

A code is random, not derived: `secrets.randbelow(10**18)`, about 59.8 bits. The service
stores only its SHA-256 with the voucher it stands for and the `iat` and `exp` of the
token minted with it, and judges a code's times as `tokens.verify` judges that token's
(`judge_times`): expired after `exp`, and refused when its lifetime exceeds the TTL
configured now, so a shorter YOUDAI_TOKEN_TTL shortens the codes already shown. Minting
a new token replaces the row, so a voucher has at most one live code, and read access
to the database gives none. Nothing in a code names the holder.

Why it cannot be guessed: live codes are those of vouchers opened within the token
TTL (5 minutes by default); even 100 000 at once leave a chance of 10^5 / 10^18 =
10^-13 per guess. A scanner key sending MISS_LIMIT unknown codes in a calendar minute is
refused for the rest of it, so one key tries at most 2 × 20 codes in any 60 s span and
28 800 a day: 2.9 × 10^-9 a day for that key, and a hit on another partner's voucher is
only `wrong_partner`. A partner cannot multiply that by issuing itself keys: all its
scanner keys together may send PARTNER_MISS_LIMIT unknown codes in a minute, then every
one of them is refused for the rest of it — at most 2 × 60 in any 60 s span, 86 400 a
day, 8.6 × 10^-9 a day per partner, about 3 × 10^-3 a year for 1 000 partners doing
nothing else.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from service.domain import tokens
from service.domain.errors import ApiError
from service.domain.language import Said

CODE_DIGITS = 18
#: Unknown codes one scanner key may send in one calendar minute.
MISS_LIMIT = 20
#: Unknown codes all of one partner's scanner keys together may send in one calendar
#: minute: three busy tills' worth of mistyped codes (a typo is rare and retyped at human
#: speed), far below what a partner's many tills ever mistype at once, yet a bound that
#: minting more keys cannot raise.
PARTNER_MISS_LIMIT = 60


def new_code() -> str:
    """A fresh random code of exactly CODE_DIGITS digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def digest(code: str) -> bytes:
    """What the database keeps of a code."""
    return hashlib.sha256(code.encode("ascii")).digest()


def normalise(text: str) -> str:
    """A code as typed or scanned: spaces (the wallet shows it in groups) dropped."""
    return "".join(text.split())


def is_code(text: str) -> bool:
    return len(text) == CODE_DIGITS and text.isascii() and text.isdigit()


def minute_of(now: datetime) -> datetime:
    """The calendar minute the unknown-code counter counts in."""
    return now.replace(second=0, microsecond=0)


def too_many_misses(now: datetime, *, by_partner: bool = False) -> ApiError:
    """The refusal for a key that sent MISS_LIMIT unknown codes this minute, or
    (`by_partner`) of a partner whose keys together sent PARTNER_MISS_LIMIT."""
    retry = minute_of(now) + timedelta(minutes=1) - now
    if by_partner:
        detail = Said(
            f"{PARTNER_MISS_LIMIT} unknown voucher codes in a minute from this partner's "
            "tills: wait, then scan again",
            f"本商户的收银台一分钟内发送了 {PARTNER_MISS_LIMIT} 个无效的优待码：请稍候再扫",
        )
    else:
        detail = Said(
            f"{MISS_LIMIT} unknown voucher codes in a minute from this till: wait, then scan again",
            f"此收银台一分钟内发送了 {MISS_LIMIT} 个无效的优待码：请稍候再扫",
        )
    return ApiError(
        "too_many_attempts",
        detail,
        headers={"Retry-After": str(max(1, int(retry.total_seconds()) + 1))},
    )


def is_blocked(key_misses: int, partner_misses: int) -> bool:
    """Whether a scanner key may not send codes this minute (its own or its partner's
    unknown codes have reached their limit)."""
    return key_misses >= MISS_LIMIT or partner_misses >= PARTNER_MISS_LIMIT


def judge_times(
    issued_at: datetime, expires_at: datetime, now: datetime, max_lifetime: int
) -> ApiError | None:
    """A code's times judged as `tokens.verify` judges its token's `iat` and `exp`: a
    lifetime over the configured TTL is `token_invalid`, a code past `exp` (with the same
    leeway) `token_expired`; None when the code is alive."""
    lifetime = (expires_at - issued_at).total_seconds()
    if lifetime > max_lifetime + tokens.LEEWAY_SECONDS:
        return ApiError(
            "token_invalid",
            Said(
                "The voucher code outlives the token lifetime in force; open the voucher again",
                "此优待码的有效期超过当前的令牌有效期：请重新打开优待券",
            ),
        )
    if expires_at.timestamp() <= now.timestamp() - tokens.LEEWAY_SECONDS:
        return ApiError("token_expired", tokens.CODE_EXPIRED)
    return None
