"""deploy/RUNBOOK.md, "If the key-encryption key is lost", step by step: the service
comes back with a new YOUDAI_SECRET_KEY, holders' vouchers open again, and staff whose
second factor was sealed under the lost key enrol again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from service.sealing import Sealer, generate_secret_key, parse_secret_key
from tests.cli.test_demo import DemoServer, bearer
from tests.conftest import TestServer, cli_env, free_port

pytestmark = pytest.mark.slow


def youdai(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=cli_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def open_voucher(session: aiohttp.ClientSession, server: DemoServer) -> str:
    """As a holder: sign in with the printed card + PIN, claim one offer of the printed
    scanner's partner, open it: the token its QR code carries."""
    base, values = server.base, server.values
    async with session.post(
        f"{base}/v1/holder-sessions", json={"card_number": values["card"], "pin": values["pin"]}
    ) as answer:
        assert answer.status == 201, await answer.text()
        holder = bearer((await answer.json())["token"])
    async with session.get(f"{base}/v1/me/offers", headers=holder) as answer:
        offers = (await answer.json())["items"]
    offer = next(o for o in offers if o["partner_id"] == values["partner"])
    async with session.post(
        f"{base}/v1/me/vouchers", json={"offer_id": offer["id"]}, headers=holder
    ) as answer:
        assert answer.status in (200, 201), await answer.text()
        voucher = await answer.json()
    async with session.get(
        f"{base}/v1/me/vouchers/{voucher['id']}/token", headers=holder
    ) as answer:
        assert answer.status == 200, await answer.text()
        return (await answer.json())["token"]


async def preview(session: aiohttp.ClientSession, server: DemoServer, token: str) -> int:
    async with session.post(
        f"{server.base}/v1/redemptions/preview",
        json={"token": token, "purchase_amount": 12800},
        headers=bearer(server.values["scanner"]),
    ) as answer:
        await answer.read()
        return answer.status


async def enrol_second_factor(url: str, sealer: Sealer) -> tuple[str, str]:
    """The demo's bureau_admin with a TOTP secret sealed under `sealer`: (id, email)."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT id, email FROM staff_accounts WHERE role = 'bureau_admin' ORDER BY email"
        )
        sealed = sealer.seal(b"JBSWY3DPEHPK3PXP", context=f"staff-totp:{row['id']}")
        await conn.execute(
            "UPDATE staff_accounts SET totp_secret_sealed = $2, totp_enabled = true WHERE id = $1",
            row["id"],
            sealed,
        )
        return row["id"], row["email"]
    finally:
        await conn.close()


async def test_the_runbooks_lost_key_procedure_brings_the_service_back(
    pg_server: TestServer, tmp_path: Path
) -> None:
    url = await pg_server.empty_database()
    lost = generate_secret_key()
    base = {"DATABASE_URL": url, "YOUDAI_DATA_DIR": str(tmp_path / "data")}
    async with aiohttp.ClientSession() as session:
        before = DemoServer(cli_env(**base, YOUDAI_SECRET_KEY=lost), free_port(), tmp_path / "1")
        await before.wait_ready(session)
        shown = await open_voucher(session, before)
        assert await preview(session, before, shown) == 200
        before.stop()
    staff_id, email = await enrol_second_factor(url, Sealer(parse_secret_key(lost)))

    # The key is lost: a new one does not open what the old one sealed.
    refused = youdai(
        "serve", "--port", str(free_port()), **base, YOUDAI_SECRET_KEY=generate_secret_key()
    )
    assert refused.returncode == 2 and "do not open" in refused.stderr

    # 1. The new key, in a file only its owner reads.
    new_file = tmp_path / "new-secret.key"
    new_file.write_text(generate_secret_key() + "\n")
    new_file.chmod(0o600)
    new = new_file.read_text().strip()
    # 2. A backup needs no key.
    backup = youdai("backup", str(tmp_path / "before.dump"), **base, YOUDAI_SECRET_KEY="")
    assert backup.returncode == 0, backup.stderr
    # 3. Reset: it says what it will do, asks, and does it.
    asked = youdai(
        "reset-signing-keys", "--new-secret-key-file", str(new_file), stdin="n\n",
        **base, YOUDAI_SECRET_KEY="",
    )  # fmt: skip
    assert asked.returncode == 1 and "nothing was changed" in asked.stdout, asked.stderr
    reset = youdai(
        "reset-signing-keys", "--new-secret-key-file", str(new_file), stdin="y\n",
        **base, YOUDAI_SECRET_KEY="",
    )  # fmt: skip
    assert reset.returncode == 0, reset.stderr
    assert "go ahead?" in reset.stdout
    assert "removed" in reset.stdout and "new signing key" in reset.stdout
    assert f"reset (they must sign in with their password and enrol again): {email}" in (
        reset.stdout
    )
    assert "set YOUDAI_SECRET_KEY to" in reset.stdout.splitlines()[-1]

    # 4. Every process with the new key; 5. a holder's voucher opens and a till takes it.
    async with aiohttp.ClientSession() as session:
        after = DemoServer(cli_env(**base, YOUDAI_SECRET_KEY=new), free_port(), tmp_path / "2")
        try:
            await after.wait_ready(session)
            fresh = await open_voucher(session, after)
            assert await preview(session, after, fresh) == 200
            # The QR shown before the reset was signed by a key that is gone.
            assert await preview(session, after, shown) == 422
            # 6. The person whose factor was reset signs in with a password alone.
            printed = after.printed.split("bureau_admin", 1)[1].split()
            assert printed[0] == email
            async with session.post(
                f"{after.base}/v1/staff-sessions",
                json={"email": email, "password": printed[2]},
            ) as answer:
                assert answer.status == 201, await answer.text()
                assert not (await answer.json())["staff"].get("totp_enabled", False)
        finally:
            after.stop()

    conn = await asyncpg.connect(url)
    try:
        audit = await conn.fetchval(
            "SELECT changes FROM audit_events WHERE entity_id = $1 AND action = 'staff.update'",
            staff_id,
        )
        assert '"totp_enabled": [true, false]' in str(audit)
    finally:
        await conn.close()
    again = youdai("reset-signing-keys", "--yes", **base, YOUDAI_SECRET_KEY=new)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout


def test_the_embedded_demo_that_lost_its_key_file_resets_into_a_new_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert youdai("rotate-signing-key", YOUDAI_DATA_DIR=str(data)).returncode == 0
    (data / "secret.key").unlink()  # lost
    refused = youdai("rotate-signing-key", YOUDAI_DATA_DIR=str(data))
    assert refused.returncode == 2 and "do not open" in refused.stderr
    new_file = tmp_path / "new-secret.key"
    new_file.write_text(generate_secret_key())
    reset = youdai(
        "reset-signing-keys", "--new-secret-key-file", str(new_file), "--yes",
        YOUDAI_DATA_DIR=str(data),
    )  # fmt: skip
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.splitlines()[-1] == f"{data / 'secret.key'} holds the new key"
    assert (data / "secret.key").read_text().strip() == new_file.read_text().strip()
    assert (data / "secret.key").stat().st_mode & 0o077 == 0
    again = youdai("rotate-signing-key", YOUDAI_DATA_DIR=str(data))
    assert again.returncode == 0, again.stderr
