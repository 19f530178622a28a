"""service.sealing: AES-256-GCM with a version byte, a random nonce and a context."""

from __future__ import annotations

import os
import stat

import pytest

from service.config import ConfigError, load_settings
from service.sealing import (
    KEY_FILE_NAME,
    Sealer,
    SealError,
    SecretKeyUnavailable,
    generate_secret_key,
    key_file_secret,
    make_sealer,
    parse_secret_key,
    read_key_file,
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


def test_without_generate_a_missing_key_file_says_to_set_youdai_secret_key(tmp_path) -> None:
    with pytest.raises(SecretKeyUnavailable, match=r"^set YOUDAI_SECRET_KEY: "):
        make_sealer(None, tmp_path / "data", generate=False)
    assert not (tmp_path / "data").exists(), "nothing is made when nothing may be"


def test_without_generate_a_key_file_already_there_is_used(tmp_path) -> None:
    made = key_file_secret(tmp_path)
    sealed = Sealer(made).seal(b"x", context="c")
    assert make_sealer(None, tmp_path, generate=False).open(sealed, context="c") == b"x"


def test_a_key_file_that_cannot_be_made_is_one_sentence_not_an_os_error(tmp_path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SecretKeyUnavailable, match=r"cannot create .*set YOUDAI_SECRET_KEY"):
        key_file_secret(tmp_path / "file" / "data")


def test_a_key_file_that_holds_no_key_names_the_file(tmp_path) -> None:
    (tmp_path / KEY_FILE_NAME).write_text("not a key\n")
    with pytest.raises(SecretKeyUnavailable, match=f"{KEY_FILE_NAME} does not hold a key"):
        read_key_file(tmp_path)


def test_settings_with_a_database_url_never_make_up_a_key(tmp_path) -> None:
    """Each pod would seal with its own (issue 31); the embedded demo still may."""
    production = load_settings(
        {"DATABASE_URL": "postgresql://u@db/youdai", "YOUDAI_DATA_DIR": str(tmp_path)}
    )
    with pytest.raises(ConfigError, match=r"^set YOUDAI_SECRET_KEY"):
        production.sealer()
    assert production.sealer_in_reach() is None
    assert list(tmp_path.iterdir()) == []
    load_settings({"YOUDAI_DATA_DIR": str(tmp_path)}).sealer()
    assert (tmp_path / KEY_FILE_NAME).exists()
    assert production.sealer_in_reach() is not None
