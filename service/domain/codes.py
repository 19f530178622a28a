"""Voucher codes (SPEC 8): 18 digits a till can type or read from a 1D barcode.

A code is random, not derived: `secrets.randbelow(10**18)`, about 59.8 bits. The service
stores only its SHA-256 with the voucher it stands for and the expiry of the token
minted with it; minting a new token replaces the row, so a voucher has at most one live
code, and read access to the database gives none. Nothing in a code names the holder.

Why it cannot be guessed: live codes are those of vouchers opened within the token
TTL (5 minutes by default); even 100 000 at once leave a chance of 10^5 / 10^18 =
10^-13 per guess. A scanner key sending MISS_LIMIT unknown codes in a calendar minute is
refused for the rest of it, so one key tries at most 2 × 20 codes in any 60 s span and
28 800 a day: 2.9 × 10^-9 a day for that key, 1 × 10^-3 a year for 1 000 keys doing
nothing else, and a hit on another partner's voucher is only `wrong_partner`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from service.domain.errors import ApiError

CODE_DIGITS = 18
#: Unknown codes one scanner key may send in one calendar minute.
MISS_LIMIT = 20


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


def too_many_misses(now: datetime) -> ApiError:
    """The refusal for a key that sent MISS_LIMIT unknown codes this minute."""
    retry = minute_of(now) + timedelta(minutes=1) - now
    return ApiError(
        "too_many_attempts",
        f"{MISS_LIMIT} unknown voucher codes in a minute from this till: wait, then scan again",
        headers={"Retry-After": str(max(1, int(retry.total_seconds()) + 1))},
    )
