"""service.sealing: AES-256-GCM with a version byte, a random nonce and a context."""

from __future__ import annotations

import os
import stat

import pytest

from service.sealing import (
    KEY_FILE_NAME,
    Sealer,
    SealError,
    generate_secret_key,
    key_file_secret,
    parse_secret_key,
)

KEY = bytes(range(32))


def test_a_sealed_value_opens_with_the_same_key_and_context() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal(b"private pem", context="signing-key:k1")
    assert sealed[0] == 1 and b"private pem" not in sealed
    assert sealer.open(sealed, context="signing-key:k1") == b"private pem"


def test_sealing_twice_gives_different_bytes() -> None:
    sealer = Sealer(KEY)
    assert sealer.seal(b"x", context="c") != sealer.seal(b"x", context="c")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda sealed: sealed[:-1] + bytes([sealed[-1] ^ 1]),
        lambda sealed: sealed[:5] + bytes([sealed[5] ^ 1]) + sealed[6:],
        lambda sealed: b"\x02" + sealed[1:],
        lambda sealed: sealed[:10],
        lambda sealed: b"",
    ],
)
def test_tampered_values_do_not_open(tamper) -> None:
    sealer = Sealer(KEY)
    with pytest.raises(SealError):
        sealer.open(tamper(sealer.seal(b"secret", context="c")), context="c")


def test_another_key_or_context_does_not_open() -> None:
    sealed = Sealer(KEY).seal(b"secret", context="staff-totp:1")
    with pytest.raises(SealError):
        Sealer(bytes(32)).open(sealed, context="staff-totp:1")
    with pytest.raises(SealError):
        Sealer(KEY).open(sealed, context="staff-totp:2")


def test_a_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        Sealer(b"short")


def test_secret_keys_parse_from_base64_with_or_without_padding() -> None:
    text = generate_secret_key()
    assert len(parse_secret_key(text)) == 32
    assert parse_secret_key(text.rstrip("=")) == parse_secret_key(text)
    standard = text.replace("-", "+").replace("_", "/")
    assert parse_secret_key(standard) == parse_secret_key(text)


@pytest.mark.parametrize("text", ["", "abc", "x" * 44, generate_secret_key()[:-8], "%%%%"])
def test_malformed_secret_keys_are_refused_with_a_sentence(text: str) -> None:
    with pytest.raises(ValueError, match="YOUDAI_SECRET_KEY must be 32 random bytes"):
        parse_secret_key(text)


def test_the_key_file_is_created_once_readable_only_by_its_owner(tmp_path) -> None:
    first = key_file_secret(tmp_path / "data")
    path = tmp_path / "data" / KEY_FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert key_file_secret(tmp_path / "data") == first
