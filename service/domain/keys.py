"""API keys: how they look and how they are stored.

A key is `yd_` followed by 43 url-safe characters (32 random bytes). Only its SHA-256
is stored: a leaked database does not leak working keys. SHA-256 (not a slow hash) is
right here because the secret has 256 bits of entropy; it cannot be guessed.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "yd_"
KEY_BYTES = 32


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def hash_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def looks_like_key(secret: str) -> bool:
    return secret.startswith(KEY_PREFIX) and 20 <= len(secret) <= 100


#: Holder session tokens: random secrets like keys, with their own prefix.
SESSION_PREFIX = "yds_"


def generate_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(KEY_BYTES)
