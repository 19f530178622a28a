"""CSV import of card holders (SPEC 4.2), through HTTP and through `youdai import-holders`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.domain import pins
from service.domain.categories import HOLDER_CATEGORIES
from tests.conftest import cli_env
from tests.helpers import make_holder

HEADER = "card_number,category,display_name,region,valid_until,pin"
ROWS = [
    "YD-0001,veteran,王建国,东城街道,2030-12-31,204816",
    "YD-0002,martyr_family,李秀英,西城街道,2029-06-30,004200",
    "YD-0003,military_family,张伟,,2031-01-01,99990000",
]
BOM = b"\xef\xbb\xbf"


def csv_file(*rows: str, header: str = HEADER, bom: bool = False) -> bytes:
    return (BOM if bom else b"") + ("\r\n".join([header, *rows]) + "\r\n").encode()


async def post_import(
    client: TestClient, headers: dict, data: bytes, expect: int = 200, content_type="text/csv"
) -> dict:
    response = await client.post(
        "/v1/holders/import", data=data, headers={**headers, "Content-Type": content_type}
    )
    assert response.status == expect, await response.text()
    return await response.json()


async def holders(db: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    return {row["card_number"]: row for row in await db.fetch("SELECT * FROM holders")}


@pytest.mark.parametrize("bom", [False, True], ids=["no-bom", "bom"])
async def test_import_creates_every_row_with_or_without_a_bom(
    client: TestClient, admin: dict, db: asyncpg.Connection, bom: bool
) -> None:
    assert await post_import(client, admin, csv_file(*ROWS, bom=bom)) == {
        "created": 3,
        "updated": 0,
    }
    stored = await holders(db)
    assert sorted(stored) == ["YD-0001", "YD-0002", "YD-0003"]
    first = stored["YD-0001"]
    assert (first["category"], first["display_name"], first["region"], first["status"]) == (
        "veteran",
        "王建国",
        "东城街道",
        "active",
    )
    assert str(stored["YD-0002"]["valid_until"]) == "2029-06-30"
    assert stored["YD-0003"]["region"] == ""
    for row, pin in zip(stored.values(), ["204816", "004200", "99990000"], strict=True):
        assert row["pin_hash"].startswith("$argon2id$")
        assert pins.verify_pin(row["pin_hash"], pin)


async def test_importing_the_same_file_again_changes_nothing(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    data = csv_file(*ROWS)
    await post_import(client, admin, data)
    before = await db.fetch("SELECT * FROM holders ORDER BY id")
    assert await post_import(client, admin, data) == {"created": 0, "updated": 0}
    assert await post_import(client, admin, csv_file(*reversed(ROWS), bom=True)) == {
        "created": 0,
        "updated": 0,
    }
    assert await db.fetch("SELECT * FROM holders ORDER BY id") == before
    per_holder = await db.fetchval("SELECT count(*) FROM audit_events WHERE entity_type = 'holder'")
    assert per_holder == 3  # the three creations only


async def test_a_changed_row_is_the_only_one_updated(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    await post_import(client, admin, csv_file(*ROWS))
    hash_before = (await holders(db))["YD-0002"]["pin_hash"]
    moved = "YD-0002,martyr_family,李秀英,南城街道,2029-06-30,004200"
    assert await post_import(client, admin, csv_file(ROWS[0], moved, ROWS[2])) == {
        "created": 0,
        "updated": 1,
    }
    row = (await holders(db))["YD-0002"]
    assert row["region"] == "南城街道"
    assert row["pin_hash"] == hash_before  # the PIN did not change, so neither did its hash
    event = await db.fetchrow(
        "SELECT action, changes FROM audit_events WHERE entity_id = $1 ORDER BY id DESC LIMIT 1",
        row["id"],
    )
    assert event["action"] == "holder.update"
    assert event["changes"] == {"region": ["西城街道", "南城街道"]}


async def test_a_changed_pin_alone_is_an_update_and_clears_a_lockout(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    await post_import(client, admin, csv_file(*ROWS))
    await db.execute(
        "UPDATE holders SET failed_pin_count = 5, locked_until = now() + interval '15 minutes' "
        "WHERE card_number = 'YD-0001'"
    )
    new_pin = ROWS[0].replace("204816", "555777")
    assert await post_import(client, admin, csv_file(new_pin, *ROWS[1:])) == {
        "created": 0,
        "updated": 1,
    }
    row = (await holders(db))["YD-0001"]
    assert pins.verify_pin(row["pin_hash"], "555777")
    assert not pins.verify_pin(row["pin_hash"], "204816")
    assert (row["failed_pin_count"], row["locked_until"]) == (0, None)
    event = await db.fetchrow(
        "SELECT changes FROM audit_events WHERE entity_id = $1 ORDER BY id DESC LIMIT 1",
        row["id"],
    )
    assert event["changes"] == {"pin": ["***", "***"]}


async def test_new_and_known_cards_in_one_file_are_counted_apart(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    await make_holder(db, card_number="YD-0001", display_name="旧名", pin="204816")
    assert await post_import(client, admin, csv_file(*ROWS)) == {"created": 2, "updated": 1}
    assert (await holders(db))["YD-0001"]["display_name"] == "王建国"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [
                "YD-0009,veteran,赵,,2030-12-31,123456",
                *ROWS[:2],
                "YD-0010,army,钱,,2030-12-31,123456",
            ],
            [(5, "category")],
        ),
        (["YD-0009,veteran,赵,,2030-12-31,12", *ROWS], [(2, "pin")]),
        (
            [*ROWS, "", "YD-0001,veteran,孙,,2030-13-01,123456"],
            [(6, "valid_until"), (6, "card_number")],
        ),
        (
            [ROWS[0], "YD 0004,veteran,,,2030-12-31,123456,extra", ROWS[1], "Y,other,周,,x,1"],
            [(3, "row"), (5, "card_number"), (5, "valid_until"), (5, "pin")],
        ),
    ],
    ids=["last-line", "first-line", "after-blank-line", "several-lines"],
)
async def test_a_bad_line_anywhere_is_422_with_its_line_number_and_nothing_is_written(
    client: TestClient, admin: dict, db: asyncpg.Connection, rows: list[str], expected: list
) -> None:
    await make_holder(db, card_number="YD-0002", display_name="旧名")
    before = await db.fetch("SELECT * FROM holders")
    events_before = await db.fetchval("SELECT count(*) FROM audit_events")
    problem = await post_import(client, admin, csv_file(*rows, bom=True), expect=422)
    assert problem["code"] == "validation_error"
    assert [(e["line"], e["field"]) for e in problem["errors"]] == expected
    assert all(e["message"] for e in problem["errors"])
    assert await db.fetch("SELECT * FROM holders") == before
    assert await db.fetchval("SELECT count(*) FROM audit_events") == events_before


async def test_a_wrong_header_is_reported_on_line_1(client: TestClient, admin: dict) -> None:
    data = csv_file(ROWS[0], header="card_number,category,name,region,valid_until,pin")
    problem = await post_import(client, admin, data, expect=422)
    assert [(e["line"], e["field"]) for e in problem["errors"]] == [
        (1, "name"),
        (1, "display_name"),
    ]


async def test_an_empty_body_is_a_validation_error(client: TestClient, admin: dict) -> None:
    problem = await post_import(client, admin, b"", expect=422)
    assert problem["errors"][0]["line"] == 1


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "text/csv; charset=gbk"]
)
async def test_only_utf8_text_csv_is_accepted(
    client: TestClient, admin: dict, content_type: str
) -> None:
    problem = await post_import(client, admin, csv_file(*ROWS), 415, content_type)
    assert problem["code"] == "unsupported_media_type"


async def test_a_file_over_16_mib_is_refused(client: TestClient, admin: dict) -> None:
    filler = "YD-0001,veteran,王建国,东城街道,2030-12-31,204816\r\n" * 400_000
    data = HEADER.encode() + b"\r\n" + filler.encode()
    assert len(data) > 16 * 1024 * 1024
    problem = await post_import(client, admin, data, expect=413)
    assert problem["code"] == "payload_too_large"


async def test_an_import_is_one_audit_event_with_counts_and_no_pin(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    await post_import(client, admin, csv_file(*ROWS))
    await post_import(client, admin, csv_file(*ROWS))
    imports = await db.fetch(
        "SELECT actor_role, changes FROM audit_events WHERE action = 'holder.import' ORDER BY id"
    )
    assert [event["changes"] for event in imports] == [
        {"rows": [None, 3], "created": [None, 3], "updated": [None, 0]},
        {"rows": [None, 3], "created": [None, 0], "updated": [None, 0]},
    ]
    assert imports[0]["actor_role"] == "admin"
    everything = await db.fetchval("SELECT string_agg(changes::text, ' ') FROM audit_events")
    for pin in ("204816", "004200", "99990000", "argon2"):
        assert pin not in everything


def run_cli(database_url: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", "import-holders", str(path)],
        env=cli_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
async def test_cli_import_holders_prints_the_counts_and_again_zero(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "holders.csv"
    path.write_bytes(csv_file(*ROWS, bom=True))
    first = run_cli(database_url, path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.strip().splitlines()[-1]) == {"created": 3, "updated": 0}
    again = run_cli(database_url, path)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == {"created": 0, "updated": 0}
    assert await db.fetchval("SELECT count(*) FROM holders") == 3
    actor = await db.fetchval(
        "SELECT DISTINCT actor_id FROM audit_events WHERE action LIKE 'holder.%'"
    )
    assert actor == "system"


@pytest.mark.slow
async def test_cli_import_holders_prints_each_bad_line_and_exits_1_writing_nothing(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "holders.csv"
    path.write_bytes(csv_file(ROWS[0], "YD-0002,army,李,,2030-12-31,123456", ROWS[2], "YD-0004"))
    result = run_cli(database_url, path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    categories = ", ".join(HOLDER_CATEGORIES)
    assert lines[0] == f"{path}:3: category: must be one of {categories}"
    assert lines[1].startswith(f"{path}:5: row: ")
    assert "nothing was imported" in lines[-1]
    assert await db.fetchval("SELECT count(*) FROM holders") == 0


@pytest.mark.slow
def test_cli_import_holders_of_a_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_cli("postgresql://nobody@127.0.0.1:1/none", tmp_path / "missing.csv")
    assert result.returncode == 2
    assert result.stderr.startswith("youdai: error: cannot read ")
    assert len(result.stderr.strip().splitlines()) == 1
