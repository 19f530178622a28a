"""Private signing keys are sealed at rest with YOUDAI_SECRET_KEY (docs/product.md,
docs/running.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization

from service.app_keys import KEYRING
from service.db.pool import init_connection
from service.domain.tokens import generate_signing_key, private_pem, public_pem
from service.flows.housekeeping import migrate_database
from service.sealing import Sealer, generate_secret_key, parse_secret_key
from tests.conftest import cli_env, free_port


def youdai(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_table_holds_no_usable_private_key(client: TestClient, db) -> None:
    key = await client.app[KEYRING].signing_key(db)
    await client.app[KEYRING].rotate(db)
    raw = key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    rows = await db.fetch("SELECT * FROM signing_keys")
    assert len(rows) == 2
    for row in rows:
        assert row["private_pem"] is None
        stored = bytes(row["private_sealed"])
        assert b"PRIVATE KEY" not in stored and raw not in stored
        with pytest.raises(ValueError):
            serialization.load_pem_private_key(stored, password=None)
        with pytest.raises(ValueError):
            serialization.load_der_private_key(stored, password=None)


async def test_plain_keys_from_before_are_sealed_on_the_first_migrate(
    own_database_url: str, settings
) -> None:
    key = generate_signing_key()
    conn = await asyncpg.connect(own_database_url)
    await init_connection(conn)
    try:
        await conn.execute(
            "INSERT INTO signing_keys (kid, private_pem, public_pem) VALUES ($1, $2, $3)",
            key.kid,
            private_pem(key),
            public_pem(key),
        )
        await migrate_database(own_database_url, settings.sealer())
        row = await conn.fetchrow("SELECT * FROM signing_keys WHERE kid = $1", key.kid)
        assert row["private_pem"] is None and row["private_sealed"] is not None
        from service.flows.keyring import Keyring
        from service.sealing import make_sealer

        keyring = Keyring(settings.token_ttl, make_sealer(settings.secret_key, settings.data_dir))
        opened = await keyring.signing_key(conn)
        assert opened.kid == key.kid
        assert private_pem(opened) == private_pem(key)
    finally:
        await conn.close()


def one_line_refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


async def test_a_wrong_secret_key_stops_start_up_with_one_line(
    own_database_url: str, tmp_path: Path
) -> None:
    right = generate_secret_key()
    env = {"DATABASE_URL": own_database_url, "YOUDAI_DATA_DIR": str(tmp_path / "a")}
    assert youdai("rotate-signing-key", **env, YOUDAI_SECRET_KEY=right).returncode == 0
    wrong = generate_secret_key()
    for command in (("migrate",), ("serve", "--port", str(free_port()))):
        line = one_line_refusal(youdai(*command, **env, YOUDAI_SECRET_KEY=wrong))
        assert "do not open with this YOUDAI_SECRET_KEY" in line
    assert youdai("migrate", **env, YOUDAI_SECRET_KEY=right).returncode == 0


@pytest.mark.parametrize(
    "command",
    [
        ("serve", "--port", "0"),
        ("rotate-signing-key",),
        ("rotate-secret-key",),
        ("reset-signing-keys", "--yes"),
    ],
    ids=lambda command: command[0],
)
async def test_with_a_database_url_and_no_secret_key_nothing_starts_and_no_key_is_made_up(
    own_database_url: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """A key made up per pod would seal the signing keys for that pod alone: the second
    replica and every rolling update would then fail (issue 31)."""
    if command[0] == "serve":
        command = ("serve", "--port", str(free_port()))
    env = {"DATABASE_URL": own_database_url, "YOUDAI_DATA_DIR": str(tmp_path)}
    line = one_line_refusal(youdai(*command, **env, YOUDAI_SECRET_KEY=""))
    assert line.startswith("youdai: error: set YOUDAI_SECRET_KEY"), line
    assert list(tmp_path.iterdir()) == []


async def test_a_key_file_already_in_the_data_folder_still_serves_with_a_database_url(
    own_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "secret.key").write_text(generate_secret_key())
    env = {"DATABASE_URL": own_database_url, "YOUDAI_DATA_DIR": str(tmp_path)}
    assert youdai("rotate-signing-key", **env, YOUDAI_SECRET_KEY="").returncode == 0


async def test_migrate_needs_no_secret_key_and_writes_no_file(
    own_database_url: str, tmp_path: Path
) -> None:
    """The migration Job has no /data: `youdai migrate` must not try to make a key there."""
    key = generate_secret_key()
    env = {"DATABASE_URL": own_database_url}
    assert youdai("rotate-signing-key", **env, YOUDAI_SECRET_KEY=key).returncode == 0
    absent = tmp_path / "absent"
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o500)
    for data_dir in (absent, readonly):
        result = youdai("migrate", **env, YOUDAI_DATA_DIR=str(data_dir), YOUDAI_SECRET_KEY="")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("applied 0 migration(s)")
    assert not absent.exists() and list(readonly.iterdir()) == []


def test_a_malformed_secret_key_is_one_line_too() -> None:
    line = one_line_refusal(youdai("migrate", YOUDAI_SECRET_KEY="not-a-key"))
    assert "YOUDAI_SECRET_KEY must be 32 random bytes" in line


async def test_rotate_secret_key_reseals_every_key_under_the_new_one(
    own_database_url: str, tmp_path: Path
) -> None:
    old, new = generate_secret_key(), generate_secret_key()
    env = {"DATABASE_URL": own_database_url, "YOUDAI_DATA_DIR": str(tmp_path)}
    for _ in range(2):  # an active and a retired key
        assert youdai("rotate-signing-key", **env, YOUDAI_SECRET_KEY=old).returncode == 0
    new_file = tmp_path / "new.key"
    new_file.write_text(new)
    result = youdai(
        "rotate-secret-key", "--new-key-file", str(new_file), **env, YOUDAI_SECRET_KEY=old
    )
    assert result.returncode == 0, result.stderr
    assert "re-sealed 2 signing key(s)" in result.stdout and new not in result.stdout
    one_line_refusal(youdai("migrate", **env, YOUDAI_SECRET_KEY=old))
    assert youdai("migrate", **env, YOUDAI_SECRET_KEY=new).returncode == 0


async def test_rotate_secret_key_replaces_the_data_folders_key_file(
    own_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "secret.key").write_text(generate_secret_key())
    env = {"DATABASE_URL": own_database_url, "YOUDAI_DATA_DIR": str(tmp_path)}
    env["YOUDAI_SECRET_KEY"] = ""  # the installation's key is the data folder's file
    assert youdai("rotate-signing-key", **env).returncode == 0
    before = (tmp_path / "secret.key").read_text()
    result = youdai("rotate-secret-key", **env)
    assert result.returncode == 0, result.stderr
    after = (tmp_path / "secret.key").read_text()
    assert after != before and len(parse_secret_key(after)) == 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    assert not (tmp_path / "secret.key.new").exists()
    assert youdai("migrate", **env).returncode == 0  # the keys open with the new file


async def test_rotate_secret_key_reseals_staff_second_factors_too(
    own_database_url: str, tmp_path: Path
) -> None:
    """A TOTP secret left under the old key would make its person's sign-in fail."""
    old, new = generate_secret_key(), generate_secret_key()
    env = {"DATABASE_URL": own_database_url, "YOUDAI_SECRET_KEY": old}
    created = youdai("create-staff", "--email", "a@example.org", "--role", "bureau_admin", **env)
    assert created.returncode == 0, created.stderr
    conn = await asyncpg.connect(own_database_url)
    try:
        staff_id = await conn.fetchval("SELECT id FROM staff_accounts")
        context = f"staff-totp:{staff_id}"
        sealed = Sealer(parse_secret_key(old)).seal(b"JBSWY3DPEHPK3PXP", context=context)
        await conn.execute(
            "UPDATE staff_accounts SET totp_secret_sealed = $1, totp_enabled = true", sealed
        )
        new_file = tmp_path / "new.key"
        new_file.write_text(new)
        result = youdai("rotate-secret-key", "--new-key-file", str(new_file), **env)
        assert result.returncode == 0, result.stderr
        assert "and 1 second factor(s)" in result.stdout
        stored = await conn.fetchval("SELECT totp_secret_sealed FROM staff_accounts")
        opened = Sealer(parse_secret_key(new)).open(bytes(stored), context=context)
        assert opened == b"JBSWY3DPEHPK3PXP"
    finally:
        await conn.close()
