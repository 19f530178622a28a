"""Opaque, time-ordered ids: a short prefix naming the kind, then a ULID.

Time order keeps keyset pagination stable while rows are inserted, and the
random part makes ids unguessable across partners.
"""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

PREFIXES = {
    "partner": "ptn",
    "key": "key",
    "holder": "hld",
    "offer": "ofr",
    "voucher": "vch",
    "redemption": "rdm",
    "reversal": "rev",
    "audit": "aud",
    "signing_key": "sig",
}


def new_id(kind: str) -> str:
    """A new id such as `ptn_01JD3Z9K7M5T8Q2W4E6R8T0Y2U`."""
    return f"{PREFIXES[kind]}_{ulid()}"


def ulid(now_ms: int | None = None) -> str:
    timestamp = int(time.time() * 1000) if now_ms is None else now_ms
    value = (timestamp << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))
