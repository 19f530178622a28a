"""`youdai export-ledger`, `verify-statement` and `verify-ledger` (docs/ledger.md): an auditor
checks the bureau's figure with three files and no access to the service; the bureau
finds a row changed behind the service's back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiohttp.test_utils import TestClient

from tests.conftest import cli_env
from tests.helpers import Till, record_redemption, record_reversal

#: Where nothing listens: a command that tried to reach a database would fail on it.
NOWHERE = "postgresql://nobody@127.0.0.1:9/nothing"


def youdai(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def offline(command: list[str]) -> list[str]:
    """The command in a network namespace of its own (no network at all), where root
    may make one; as it is elsewhere (the unreachable DATABASE_URL still holds)."""
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        probe = subprocess.run([unshare, "--net", "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [unshare, "--net", *command]
    return command


async def arrange(db: asyncpg.Connection, settings) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 700, "uses_per_voucher": 10}
    )
    now = datetime.now(UTC)
    made = [
        await record_redemption(db, settings, till.voucher_id, at=now, discount_amount=700)
        for _ in range(3)
    ]
    await record_reversal(db, settings, made[0], at=now)


async def test_an_auditor_verifies_the_statement_with_three_files_and_nothing_else(
    client: TestClient, db: asyncpg.Connection, settings, admin, database_url: str, tmp_path: Path
) -> None:
    await arrange(db, settings)
    answer = await client.get("/v1/reports/statement", headers=admin)
    assert answer.status == 200
    (tmp_path / "statement.json").write_text(await answer.text())
    (tmp_path / "jwks.json").write_text(await (await client.get("/.well-known/jwks.json")).text())

    exported = youdai(cli_env(DATABASE_URL=database_url), "export-ledger", str(tmp_path / "e"))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == f"wrote 4 entries to {tmp_path / 'e'}"
    lines = (tmp_path / "e").read_text().splitlines()
    assert len(lines) == 4

    data_dir = tmp_path / "no-data-here"
    env = cli_env(DATABASE_URL=NOWHERE, YOUDAI_DATA_DIR=str(data_dir))
    args = [
        "verify-statement",
        str(tmp_path / "statement.json"),
        "--jwks",
        str(tmp_path / "jwks.json"),
        "--entries",
        str(tmp_path / "e"),
    ]
    verified = subprocess.run(
        offline([sys.executable, "-m", "service", *args]),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("statement verified")
    assert "redemptions 3, reversals 1" in verified.stdout
    assert "discount_total 1400" in verified.stdout
    assert not data_dir.exists()  # no embedded database was started either

    # One fen less in one entry: the root no longer matches.
    forged = lines[2].replace('"discount_amount":700', '"discount_amount":699')
    (tmp_path / "e").write_text("\n".join([*lines[:2], forged, *lines[3:]]) + "\n")
    refused = youdai(env, *args)
    assert refused.returncode == 1
    assert refused.stdout.startswith("statement NOT verified")


async def test_verify_ledger_names_the_first_entry_a_superuser_changed(
    client: TestClient, db: asyncpg.Connection, settings, admin, database_url: str
) -> None:
    await arrange(db, settings)
    assert (await client.get("/v1/reports/statement", headers=admin)).status == 200
    env = cli_env(DATABASE_URL=database_url)
    held = youdai(env, "verify-ledger")
    assert held.returncode == 0, held.stdout + held.stderr
    assert held.stdout.strip() == "ledger verified: 4 entries, 1 checkpoints"

    second = await db.fetchval("SELECT entry_id FROM ledger_entries WHERE log_index = 2")
    async with db.transaction():
        await db.execute("ALTER TABLE redemptions DISABLE TRIGGER redemptions_append_only")
        await db.execute("UPDATE redemptions SET discount_amount = 1 WHERE id = $1", second)
        await db.execute("ALTER TABLE redemptions ENABLE TRIGGER redemptions_append_only")
    changed = youdai(env, "verify-ledger")
    assert changed.returncode == 1
    assert changed.stdout.strip() == (
        f"ledger NOT verified: entry 2: the leaf differs from its ledger row {second}"
    )
