"""Sealing small secrets at rest (AES-256-GCM), e.g. staff TOTP secrets.

STAND-IN written by issue 16 with the API agreed with issue 14, whose version (and
its key handling from YOUDAI_SECRET_KEY) replaces this file at merge. Here the 32-byte
key comes from a random file in the data folder, readable only by its owner.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
VERSION = b"\x01"


class SealError(Exception):
    """The sealed value was made with another key or context, or was altered."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the sealing key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, *, context: str) -> bytes:
        if sealed[:1] != VERSION:
            raise SealError("unknown sealed format")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, context.encode())
        except InvalidTag:
            raise SealError("the sealed value does not open with this key") from None


def sealer_for(data_dir: Path) -> Sealer:
    """The data folder's sealing key, made on first use (written to a private temporary
    file and linked into place, so a concurrent process never reads half a key)."""
    path = data_dir / "sealing.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=".sealing-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(secrets.token_bytes(32))
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            os.unlink(temporary)
    return Sealer(path.read_bytes())
