"""Encryption at rest for secrets kept in PostgreSQL (signing keys, staff TOTP secrets).

A `Sealer` holds the key-encryption key (YOUDAI_SECRET_KEY; a key file in YOUDAI_DATA_DIR
when unset, which only the embedded demo makes up: with DATABASE_URL every process must
share one key, see Settings.sealer) and seals with AES-256-GCM: a version byte, a random
96-bit nonce, then the ciphertext and tag. `context` names what is sealed ("signing-
key:<kid>", "staff-totp:<id>") and is bound as associated data, so a sealed value
copied into another row or column does not open. Read access to the database alone
therefore cannot mint a voucher token (docs/product.md).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: The first byte of every sealed value: the format, so a later one can be told apart.
VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
#: The key file written in the data folder when YOUDAI_SECRET_KEY is unset.
KEY_FILE_NAME = "secret.key"


class SealError(Exception):
    """A sealed value does not open: the wrong key, another context, or tampering."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a sealing key is {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, _associated(context))
        return bytes([VERSION]) + nonce + sealed

    def open(self, sealed: bytes, *, context: str) -> bytes:
        if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[0] != VERSION:
            raise SealError("not a sealed value of a known version")
        nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, _associated(context))
        except InvalidTag:
            raise SealError("the value does not open with this key and context") from None


def _associated(context: str) -> bytes:
    return f"youdai/v{VERSION}/{context}".encode()


def generate_secret_key() -> str:
    """A new YOUDAI_SECRET_KEY: 32 random bytes, base64url (as in deploy/CONFIG.md)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_secret_key(text: str) -> bytes:
    """The 32 bytes of a YOUDAI_SECRET_KEY (base64 or base64url, padding optional);
    ValueError with a sentence for the operator otherwise."""
    cleaned = text.strip()
    try:
        raw = base64.urlsafe_b64decode(
            cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4)
        )
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise ValueError(
            "YOUDAI_SECRET_KEY must be 32 random bytes in base64 (44 characters), e.g. "
            "from `python -c 'import secrets,base64;"
            "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'`"
        )
    return raw


class SecretKeyUnavailable(Exception):
    """No key-encryption key can be had: the message says which setting to give."""


def read_key_file(data_dir: Path) -> bytes | None:
    """The data folder's key when its file exists, without ever creating it."""
    path = data_dir / KEY_FILE_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SecretKeyUnavailable(
            f"cannot read {path}: {error.strerror or error}; set YOUDAI_SECRET_KEY instead"
        ) from None
    try:
        return parse_secret_key(text)
    except ValueError:
        raise SecretKeyUnavailable(
            f"{path} does not hold a key (32 random bytes in base64): replace it with the "
            "installation's key, or set YOUDAI_SECRET_KEY"
        ) from None


def key_file_secret(data_dir: Path) -> bytes:
    """The key kept in the data folder, created (mode 0600) on first use."""
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race: read its key below
        except OSError as error:
            raise SecretKeyUnavailable(
                f"cannot create {path}: {error.strerror or error}; set YOUDAI_SECRET_KEY, "
                "or YOUDAI_DATA_DIR to a folder this user may write"
            ) from None
        else:
            with os.fdopen(fd, "w") as file:
                file.write(generate_secret_key() + "\n")
    found = read_key_file(data_dir)
    assert found is not None
    return found


def make_sealer(secret_key: bytes | None, data_dir: Path, *, generate: bool = True) -> Sealer:
    """The process's Sealer: YOUDAI_SECRET_KEY when given, else the data folder's key,
    which is made on first use only when `generate` (the embedded demo: production
    processes must all share one key, so one made up by a single pod is refused)."""
    if secret_key is not None:
        return Sealer(secret_key)
    if generate:
        return Sealer(key_file_secret(data_dir))
    found = read_key_file(data_dir)
    if found is None:
        raise SecretKeyUnavailable(
            "set YOUDAI_SECRET_KEY: with DATABASE_URL every process of the installation "
            "needs the same key-encryption key, and none is given (YOUDAI_SECRET_KEY is "
            f"unset and there is no {data_dir / KEY_FILE_NAME}); see deploy/CONFIG.md"
        )
    return Sealer(found)
