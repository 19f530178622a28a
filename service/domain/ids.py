"""Opaque, time-ordered ids: a short prefix naming the kind, then 16 characters.

The 16 characters are 80 bits in Crockford base32: 44 bits of Unix milliseconds (good
until the year 2527) then 36 random bits. Time order keeps keyset pagination stable
while rows are inserted; the random part keeps ids unguessable and unique across
processes. Ids are kept short because two of them travel in every voucher token,
and a shorter token is a smaller, faster-to-scan QR code.
"""

from __future__ import annotations

import secrets
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TIME_BITS = 44
_RANDOM_BITS = 36
ID_CHARS = (_TIME_BITS + _RANDOM_BITS) // 5

PREFIXES = {
    "partner": "ptn",
    "key": "key",
    "holder": "hld",
    "offer": "ofr",
    "voucher": "vch",
    "redemption": "rdm",
    "reversal": "rev",
    "audit": "aud",
    "staff": "stf",
    "staff_session": "sts",
}


def new_id(kind: str) -> str:
    """A new id such as `ptn_1JD3Z9K7M5T8Q2W4`."""
    return f"{PREFIXES[kind]}_{time_ordered_id()}"


_last = [0, 0]  # (milliseconds, random part) of the last id made by this process
_lock = threading.Lock()


def time_ordered_id(now_ms: int | None = None) -> str:
    """Within one millisecond a process counts up from its last id (as monotonic ULIDs
    do), so the ids it makes never collide and stay in creation order."""
    timestamp = (int(time.time() * 1000) if now_ms is None else now_ms) % (1 << _TIME_BITS)
    with _lock:
        if timestamp <= _last[0] and _last[1] + 1 < (1 << _RANDOM_BITS):
            timestamp, random_part = _last[0], _last[1] + 1
        else:
            random_part = secrets.randbits(_RANDOM_BITS - 1)  # room to count up
        _last[:] = [timestamp, random_part]
    value = (timestamp << _RANDOM_BITS) | random_part
    chars = []
    for _ in range(ID_CHARS):
        chars.append(_CROCKFORD[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))
