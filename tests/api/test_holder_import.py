"""CSV import of card holders (docs/api.md), through HTTP and through `youdai import-holders`."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.app_keys import IMPORTS
from service.domain import pins
from service.domain.auth import Role
from service.domain.categories import HOLDER_CATEGORIES
from service.domain.holder_imports import STOPPED
from tests.conftest import cli_env
from tests.helpers import bearer, make_holder, make_key, make_partner

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
    client: TestClient, headers: dict, data: bytes, expect: int = 202, content_type="text/csv"
) -> dict:
    response = await client.post(
        "/v1/holders/import", data=data, headers={**headers, "Content-Type": content_type}
    )
    assert response.status == expect, await response.text()
    body = await response.json()
    if expect == 202:
        assert response.headers["Location"] == f"/v1/holder-imports/{body['id']}"
    return body


async def job_of(client: TestClient, headers: dict, job_id: str) -> dict:
    response = await client.get(f"/v1/holder-imports/{job_id}", headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def wait_for_end(client: TestClient, headers: dict, job_id: str) -> dict:
    """The job once it is no longer running."""
    deadline = time.monotonic() + 60
    while (job := await job_of(client, headers, job_id))["status"] == "running":
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.05)
    return job


async def import_file(client: TestClient, headers: dict, data: bytes) -> dict:
    """{"created", "updated"} of a completed import of `data`."""
    job = await wait_for_end(client, headers, (await post_import(client, headers, data))["id"])
    assert job["status"] == "completed", job
    assert job["done"] == job["rows"]
    return {"created": job["created"], "updated": job["updated"]}


async def holders(db: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    return {row["card_number"]: row for row in await db.fetch("SELECT * FROM holders")}


@pytest.mark.parametrize("bom", [False, True], ids=["no-bom", "bom"])
async def test_import_creates_every_row_with_or_without_a_bom(
    client: TestClient, admin: dict, db: asyncpg.Connection, bom: bool
) -> None:
    assert await import_file(client, admin, csv_file(*ROWS, bom=bom)) == {
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
    await import_file(client, admin, data)
    before = await db.fetch("SELECT * FROM holders ORDER BY id")
    assert await import_file(client, admin, data) == {"created": 0, "updated": 0}
    assert await import_file(client, admin, csv_file(*reversed(ROWS), bom=True)) == {
        "created": 0,
        "updated": 0,
    }
    assert await db.fetch("SELECT * FROM holders ORDER BY id") == before


async def test_a_changed_row_is_the_only_one_updated(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    await import_file(client, admin, csv_file(*ROWS))
    before = await holders(db)
    hash_before = before["YD-0002"]["pin_hash"]
    moved = "YD-0002,martyr_family,李秀英,南城街道,2029-06-30,004200"
    assert await import_file(client, admin, csv_file(ROWS[0], moved, ROWS[2])) == {
        "created": 0,
        "updated": 1,
    }
    after = await holders(db)
    row = after["YD-0002"]
    assert row["region"] == "南城街道"
    assert row["pin_hash"] == hash_before  # the PIN did not change, so neither did its hash
    assert row["updated_at"] > row["created_at"]
    assert {card: r for card, r in after.items() if card != "YD-0002"} == {
        card: r for card, r in before.items() if card != "YD-0002"
    }


async def test_a_changed_pin_alone_is_an_update_and_clears_a_lockout(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    await import_file(client, admin, csv_file(*ROWS))
    await db.execute(
        "UPDATE holders SET failed_pin_count = 5, locked_until = now() + interval '15 minutes' "
        "WHERE card_number = 'YD-0001'"
    )
    new_pin = ROWS[0].replace("204816", "555777")
    assert await import_file(client, admin, csv_file(new_pin, *ROWS[1:])) == {
        "created": 0,
        "updated": 1,
    }
    row = (await holders(db))["YD-0001"]
    assert pins.verify_pin(row["pin_hash"], "555777")
    assert not pins.verify_pin(row["pin_hash"], "204816")
    assert (row["failed_pin_count"], row["locked_until"]) == (0, None)


async def test_new_and_known_cards_in_one_file_are_counted_apart(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    await make_holder(db, card_number="YD-0001", display_name="旧名", pin="204816")
    assert await import_file(client, admin, csv_file(*ROWS)) == {"created": 2, "updated": 1}
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
    assert problem["error_count"] == len(expected)
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


@pytest.mark.parametrize("encoding", ["gbk", "utf-16"])
async def test_a_file_that_is_not_utf8_is_refused_with_the_advice_and_never_stored(
    client: TestClient, admin: dict, db: asyncpg.Connection, encoding: str
) -> None:
    """Excel on Chinese Windows saves "CSV" as GBK: never stored as U+FFFD, the advice
    to save it as "CSV UTF-8" given in both languages, on the line of the first bad byte."""
    text = "\r\n".join([HEADER, *ROWS]) + "\r\n"
    before = await db.fetchval("SELECT count(*) FROM holders")
    problem = await post_import(client, admin, text.encode(encoding), expect=422)
    assert problem["code"] == "validation_error"
    [error] = problem["errors"]
    assert (error["field"], error["line"]) == ("file", 1 if encoding == "utf-16" else 2)
    assert '"CSV UTF-8"' in error["message"] and "另存为" in error["message"]
    assert await db.fetchval("SELECT count(*) FROM holders") == before
    assert await db.fetchval("SELECT count(*) FROM holders WHERE display_name LIKE '%\ufffd%'") == 0


async def test_a_file_over_16_mib_is_refused(client: TestClient, admin: dict) -> None:
    filler = "YD-0001,veteran,王建国,东城街道,2030-12-31,204816\r\n" * 400_000
    data = HEADER.encode() + b"\r\n" + filler.encode()
    assert len(data) > 16 * 1024 * 1024
    problem = await post_import(client, admin, data, expect=413)
    assert problem["code"] == "payload_too_large"


async def test_an_import_is_one_audit_event_naming_the_job_with_counts_and_no_pin(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    first = await post_import(client, admin, csv_file(*ROWS))
    await wait_for_end(client, admin, first["id"])
    await import_file(client, admin, csv_file(*ROWS))
    imports = await db.fetch(
        "SELECT actor_role, entity_type, entity_id, changes FROM audit_events "
        "WHERE action = 'holder.import' ORDER BY id"
    )
    assert (imports[0]["entity_type"], imports[0]["entity_id"]) == ("holder_import", first["id"])
    per_holder = await db.fetchval("SELECT count(*) FROM audit_events WHERE entity_type = 'holder'")
    assert per_holder == 0
    assert [event["changes"] for event in imports] == [
        {"rows": [None, 3], "created": [None, 3], "updated": [None, 0]},
        {"rows": [None, 3], "created": [None, 0], "updated": [None, 0]},
    ]
    assert imports[0]["actor_role"] == "admin"
    everything = await db.fetchval("SELECT string_agg(changes::text, ' ') FROM audit_events")
    for pin in ("204816", "004200", "99990000", "argon2"):
        assert pin not in everything


async def test_a_good_file_answers_202_with_the_running_job_then_completes(
    client: TestClient, admin: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="youdai.imports")
    job = await post_import(client, admin, csv_file(*ROWS))
    assert job["id"].startswith("imp_")
    assert {key: job[key] for key in ("status", "rows", "done", "created", "updated")} == {
        "status": "running",
        "rows": 3,
        "done": 0,
        "created": 0,
        "updated": 0,
    }
    assert job["detail"] is None and job["finished_at"] is None
    final = await wait_for_end(client, admin, job["id"])
    assert {key: final[key] for key in ("status", "rows", "done", "created", "updated")} == {
        "status": "completed",
        "rows": 3,
        "done": 3,
        "created": 3,
        "updated": 0,
    }
    assert final["detail"] is None and final["finished_at"] >= final["created_at"]
    logged = [r for r in caplog.records if r.name == "youdai.imports"]
    assert [r.getMessage() for r in logged] == ["holder import completed"]
    assert (logged[0].holders_created, logged[0].holders_updated) == (3, 0)


async def test_a_file_of_1500_bad_lines_lists_1000_errors_and_counts_1500(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    bad = [f"YD-{n:05d},army,李,,2030-12-31,204816" for n in range(1500)]
    problem = await post_import(client, admin, csv_file(*ROWS, *bad), expect=422)
    assert problem["error_count"] == 1500
    assert len(problem["errors"]) == 1000
    assert problem["errors"][0] == {
        "line": 5,
        "field": "category",
        "message": "must be one of " + ", ".join(HOLDER_CATEGORIES),
    }
    assert "1500 problem(s)" in problem["detail"]
    assert await db.fetchval("SELECT count(*) FROM holder_imports") == 0


async def test_an_unknown_import_is_404(client: TestClient, admin: dict) -> None:
    for job_id in ("imp_38GM2K1Q2593PA8S", "nope", "imp_%00"):
        response = await client.get(f"/v1/holder-imports/{job_id}", headers=admin)
        assert response.status == 404
        assert (await response.json())["code"] == "not_found"


async def test_the_job_is_for_admin_callers_only(
    client: TestClient, admin: dict, db: asyncpg.Connection
) -> None:
    job = await post_import(client, admin, csv_file(*ROWS))
    partner_key = await make_key(db, Role.PARTNER, await make_partner(db))
    response = await client.get(f"/v1/holder-imports/{job['id']}", headers=bearer(partner_key))
    assert response.status == 403
    await wait_for_end(client, admin, job["id"])


class HeldWrite:
    """SHARE lock on holders: readers pass, writers wait. A job hashes and stages every
    row, then waits at its one write into holders until the lock is let go."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    async def __aenter__(self) -> HeldWrite:
        self.conn = await asyncpg.connect(self.database_url)
        self.transaction = self.conn.transaction()
        await self.transaction.start()
        await self.conn.execute("LOCK TABLE holders IN SHARE MODE")
        return self

    async def job_waiting(self) -> dict:
        """The running job, once it waits at its write (every row checked)."""
        deadline = time.monotonic() + 60
        while True:
            waiting = await self.conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'youdai-import' "
                "AND wait_event_type = 'Lock' AND datname = current_database()"
            )
            if waiting:
                break
            assert time.monotonic() < deadline, "the import never reached its write"
            await asyncio.sleep(0.05)
        job = await self.conn.fetchrow("SELECT * FROM holder_imports WHERE status = 'running'")
        return dict(job)

    async def __aexit__(self, *exc_info: object) -> None:
        await self.transaction.rollback()
        await self.conn.close()


async def test_no_holder_is_visible_until_the_whole_file_commits_and_a_second_import_is_409(
    database_url: str, settings, aiohttp_client, admin: dict, db: asyncpg.Connection
) -> None:
    first, second = [await aiohttp_client(create_app(settings, database_url)) for _ in range(2)]
    async with HeldWrite(database_url) as held:
        job = await post_import(first, admin, csv_file(*ROWS))
        waiting = await held.job_waiting()
        assert (waiting["id"], waiting["done"], waiting["rows"]) == (job["id"], 3, 3)
        assert await db.fetchval("SELECT count(*) FROM holders") == 0
        # Another server process: same answer as the first one's.
        for client in (second, first):
            problem = await post_import(client, admin, csv_file(ROWS[0]), expect=409)
            assert problem["code"] == "conflict"
        assert (await job_of(second, admin, job["id"]))["status"] == "running"
    final = await wait_for_end(second, admin, job["id"])
    assert (final["status"], final["created"]) == ("completed", 3)
    assert await db.fetchval("SELECT count(*) FROM holders") == 3
    assert await db.fetchval("SELECT count(*) FROM holder_imports") == 1  # the 409s made none
    await import_file(second, admin, csv_file(ROWS[0]))  # the lock is free again


async def test_a_job_stopped_by_shutdown_ends_failed_with_nothing_written(
    client: TestClient, admin: dict, db: asyncpg.Connection, database_url: str
) -> None:
    await make_holder(db, card_number="YD-0001", display_name="旧名", pin="204816")
    before = await db.fetch("SELECT * FROM holders")
    async with HeldWrite(database_url) as held:
        job = await post_import(client, admin, csv_file(*ROWS))
        await held.job_waiting()
        await client.app[IMPORTS].close()  # what the app's shutdown does
        stopped = await job_of(client, admin, job["id"])
    assert stopped["status"] == "failed"
    assert stopped["detail"] == STOPPED
    assert stopped["finished_at"] is not None
    assert await db.fetch("SELECT * FROM holders") == before
    events = await db.fetchval("SELECT count(*) FROM audit_events WHERE action = 'holder.import'")
    assert events == 0


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


@pytest.mark.slow
async def test_cli_import_holders_draws_a_progress_bar_on_a_terminal_and_waits_for_the_end(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "holders.csv"
    path.write_bytes(csv_file(*ROWS))
    terminal, stderr = os.openpty()
    # A terminal of 24 rows and 80 columns (a new pty has 0 columns: nothing fits).
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "service", "import-holders", str(path)],
            env=cli_env(DATABASE_URL=database_url),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=120,
        )
        os.close(stderr)
        drawn = b""
        while chunk := await asyncio.to_thread(_read_available, terminal):
            drawn += chunk
    finally:
        os.close(terminal)
    assert result.returncode == 0, drawn
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"created": 3, "updated": 0}
    text = drawn.decode()
    assert "imp_" in text and "100%" in text and "3/3" in text, text
    # Log lines meanwhile start a line of their own, above the bar, never inside it.
    logged = [i for i in range(len(text)) if text.startswith('{"time"', i)]
    assert any("holder import completed" in text[i : i + 200] for i in logged), text
    assert all(i == 0 or text[i - 1] in "\r\n" for i in logged), text
    # It waited for the end: the job is over when the command is.
    assert await db.fetchval("SELECT status FROM holder_imports") == "completed"
    assert await db.fetchval("SELECT count(*) FROM holders") == 3


def _read_available(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the other end is closed and everything was read
        return b""


@pytest.mark.slow
async def test_cli_import_holders_stopped_with_ctrl_c_says_nothing_was_imported(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "holders.csv"
    rows = [f"YD-{n:05d},veteran,王建国,东城街道,2030-12-31,{204816 + n}" for n in range(3000)]
    path.write_bytes(csv_file(*rows))
    terminal, stderr = os.openpty()
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    drawn = b""
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "import-holders", str(path)],
            env=cli_env(DATABASE_URL=database_url),
            stdout=subprocess.PIPE,
            stderr=stderr,
            process_group=0,  # its own, as a terminal's foreground job
            # A job started in the background of a non-interactive shell (as CI may start
            # this run) inherits SIGINT ignored; a terminal's foreground job never does.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        os.close(stderr)
        while b"row" not in drawn or b" 0/3000" in drawn.rsplit(b"\r", 1)[-1]:
            chunk = await asyncio.to_thread(_read_available, terminal)
            assert chunk, drawn
            drawn += chunk
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        code = await asyncio.to_thread(process.wait, 60)
        while chunk := await asyncio.to_thread(_read_available, terminal):
            drawn += chunk
    finally:
        os.close(terminal)
    text = drawn.decode(errors="replace")
    assert code == 130, text
    assert text.rstrip().endswith("youdai: stopped, nothing was imported"), text
    assert "Traceback" not in text
    assert await db.fetchval("SELECT count(*) FROM holders") == 0
    assert await db.fetchval("SELECT status FROM holder_imports") == "failed"
