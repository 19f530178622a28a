"""`youdai report`: the same files as GET /v1/reports/discounts, from the command line."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
from aiohttp.test_utils import TestClient

from tests.conftest import cli_env
from tests.helpers import make_holder, make_offer, make_partner, make_voucher, record_redemption

SHANGHAI = ZoneInfo("Asia/Shanghai")


def youdai(database_url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=cli_env(DATABASE_URL=database_url),
        capture_output=True,
        timeout=60,
    )


async def _some_redemptions(db, settings) -> None:
    partner = await make_partner(db, name="区邮政分公司")
    offer = await make_offer(db, partner, uses_per_voucher=10)
    voucher = await make_voucher(db, settings, await make_holder(db), offer)
    for month in (1, 2, 2):
        await record_redemption(
            db, settings, voucher, at=datetime(2026, month, 3, 9, tzinfo=SHANGHAI)
        )


async def test_report_prints_the_same_csv_as_the_api(
    client: TestClient, admin, db, settings, database_url: str
) -> None:
    await _some_redemptions(db, settings)
    params = {"group_by": "partner,month", "from": "2026-01-01", "to": "2026-12-31"}
    api = await client.get(
        "/v1/reports/discounts", params={**params, "format": "csv"}, headers=admin
    )

    run = youdai(
        database_url, "report", "--from", "2026-01-01", "--to", "2026-12-31",
        "--group-by", "partner,month",
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    assert run.stdout == await api.read()
    assert "区邮政分公司".encode() in run.stdout


async def test_report_writes_an_xlsx_file_with_o(
    db, settings, database_url: str, tmp_path: Path
) -> None:
    await _some_redemptions(db, settings)
    target = tmp_path / "2026.xlsx"

    run = youdai(
        database_url, "report", "--from", "2026-01-01", "--group-by", "month",
        "--format", "xlsx", "-o", str(target),
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    assert b"3 redemption(s)" in run.stdout
    sheet = openpyxl.load_workbook(io.BytesIO(target.read_bytes())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert [(r[0], r[1]) for r in rows[1:]] == [("2026-01", 1), ("2026-02", 2), ("total", 3)]


def test_report_with_a_bad_grouping_fails_with_one_line(database_url: str) -> None:
    run = youdai(database_url, "report", "--group-by", "partner,region")
    assert run.returncode == 2
    assert run.stderr.decode().count("\n") == 1 and b"--group-by" in run.stderr
    bad_date = youdai(database_url, "report", "--from", "2026-13-01")
    assert bad_date.returncode == 2 and b"--from" in bad_date.stderr


async def test_report_without_group_by_has_a_row_per_partner_as_the_readme_says(
    client: TestClient, admin, db, settings, database_url: str
) -> None:
    await _some_redemptions(db, settings)
    api = await client.get(
        "/v1/reports/discounts",
        params={"group_by": "partner", "from": "2026-01-01", "format": "csv"},
        headers=admin,
    )
    run = youdai(database_url, "report", "--from", "2026-01-01")
    assert run.returncode == 0, run.stderr
    assert run.stdout == await api.read()
    assert run.stdout.decode("utf-8-sig").splitlines()[0].startswith("partner_id,partner_name")
    assert "区邮政分公司".encode() in run.stdout
