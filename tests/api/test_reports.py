"""GET /v1/reports/discounts and /v1/reports/summary: exact net totals by partner, offer,
holder category and month in the programme's time zone; JSON, CSV and XLSX."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg
import openpyxl
import pytest
from aiohttp.test_utils import TestClient

from service.db.reconcile import mismatches
from service.domain.auth import Role
from tests.helpers import (
    bearer,
    fold_all,
    make_holder,
    make_key,
    make_offer,
    make_partner,
    make_voucher,
    record_redemption,
    record_reversal,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def local(*parts: int) -> datetime:
    """An instant given as a wall-clock time in Asia/Shanghai."""
    return datetime(*parts, tzinfo=SHANGHAI)


@dataclass
class Programme:
    post: str
    diner: str
    post_offer: str
    diner_offer: str
    diner_offer_2: str
    veteran_post: str  # vouchers: holder category + offer
    family_post: str
    veteran_diner: str
    veteran_diner_2: str
    post_key: dict[str, str]
    post_scanner: dict[str, str]


@pytest.fixture
async def programme(db: asyncpg.Connection, settings) -> Programme:
    post = await make_partner(db, name="区邮政分公司", category="postal")
    diner = await make_partner(db, name="老兵饭店", category="catering")
    post_offer = await make_offer(db, post, title="邮政寄递九折", uses_per_voucher=100)
    diner_offer = await make_offer(db, diner, title="堂食八五折", uses_per_voucher=100)
    diner_offer_2 = await make_offer(
        db, diner, title="=SUM(A1)", kind="amount_off", amount_off=500, uses_per_voucher=100
    )
    veteran = await make_holder(db, category="veteran")
    family = await make_holder(db, category="martyr_family")
    return Programme(
        post=post,
        diner=diner,
        post_offer=post_offer,
        diner_offer=diner_offer,
        diner_offer_2=diner_offer_2,
        veteran_post=await make_voucher(db, settings, veteran, post_offer),
        family_post=await make_voucher(db, settings, family, post_offer),
        veteran_diner=await make_voucher(db, settings, veteran, diner_offer),
        veteran_diner_2=await make_voucher(db, settings, veteran, diner_offer_2),
        post_key=bearer(await make_key(db, Role.PARTNER, post)),
        post_scanner=bearer(await make_key(db, Role.SCANNER, post)),
    )


async def report(client: TestClient, headers: dict[str, str], **params: str) -> dict:
    response = await client.get("/v1/reports/discounts", params=params, headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def problem(client: TestClient, headers: dict[str, str], status: int, **params: str):
    response = await client.get("/v1/reports/discounts", params=params, headers=headers)
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    return await response.json()


YEAR_2026 = {"from": "2026-01-01", "to": "2026-12-31"}


async def sale(db, settings, voucher_id: str, at: datetime, purchase: int, discount: int) -> str:
    """A redemption of `purchase` fen with `discount` fen off, made at `at`."""
    return await record_redemption(
        db, settings, voucher_id, at=at, purchase_amount=purchase, discount_amount=discount
    )


async def test_report_by_partner_and_month_sums_each_group_exactly(
    client: TestClient, admin, db, settings, programme: Programme
) -> None:
    p = programme
    await sale(db, settings, programme.veteran_post, local(2026, 1, 5, 10), 1000, 100)
    await sale(db, settings, programme.family_post, local(2026, 1, 9, 10), 2001, 201)
    await sale(db, settings, programme.veteran_post, local(2026, 2, 1, 9), 500, 50)
    await sale(db, settings, programme.veteran_diner, local(2026, 2, 3, 12), 8800, 1320)

    body = await report(client, admin, group_by="partner,month", **YEAR_2026)

    assert body["currency"] == "CNY"
    assert (body["from"], body["to"], body["group_by"]) == (
        "2026-01-01",
        "2026-12-31",
        ["partner", "month"],
    )
    assert body["rows"] == [
        row(p.post, "区邮政分公司", "2026-01", 2, 0, 3001, 301),
        row(p.post, "区邮政分公司", "2026-02", 1, 0, 500, 50),
        row(p.diner, "老兵饭店", "2026-02", 1, 0, 8800, 1320),
    ]  # names sort by code point: 区 (U+533A) before 老 (U+8001)
    assert body["totals"] == {
        "redemptions": 4,
        "reversals": 0,
        "purchase_total": 12301,
        "discount_total": 1671,
        "offline": 0,
        "conflicts": 0,
    }


def row(partner_id, name, month, redemptions, reversals, purchase, discount) -> dict:
    return {
        "partner_id": partner_id,
        "partner_name": name,
        "partner_region": "",
        "month": month,
        "redemptions": redemptions,
        "reversals": reversals,
        "purchase_total": purchase,
        "discount_total": discount,
        "offline": 0,
        "conflicts": 0,
    }


async def test_reversal_counts_in_the_month_it_was_made_not_the_redemptions(
    client: TestClient, admin, db, settings, programme: Programme
) -> None:
    redeemed = await sale(
        db, settings, programme.veteran_post, local(2026, 1, 31, 23, 59, 59), 900, 90
    )
    await record_reversal(db, settings, redeemed, at=local(2026, 2, 1, 0, 0, 0))

    body = await report(client, admin, group_by="month", **YEAR_2026)

    assert body["rows"] == [
        {"month": "2026-01", "redemptions": 1, "reversals": 0, "purchase_total": 900,
         "discount_total": 90, "offline": 0, "conflicts": 0},
        {"month": "2026-02", "redemptions": 0, "reversals": 1, "purchase_total": -900,
         "discount_total": -90, "offline": 0, "conflicts": 0},
    ]  # fmt: skip
    assert body["totals"]["discount_total"] == 0
    january = await report(client, admin, **{"from": "2026-01-01", "to": "2026-01-31"})
    assert january["totals"]["discount_total"] == 90


async def test_months_and_dates_are_calendar_days_in_the_programme_time_zone(
    client: TestClient, admin, db, settings, programme: Programme
) -> None:
    # 16:30 UTC on 31 March is 00:30 on 1 April in Shanghai: April's.
    at = datetime(2026, 3, 31, 16, 30, tzinfo=UTC)
    await sale(db, settings, programme.veteran_post, at, 700, 70)
    # 23:59:59 local on 31 December 2025 is still last year's; 00:00:00 on 1 January is this.
    await sale(db, settings, programme.veteran_post, local(2025, 12, 31, 23, 59, 59), 1, 1)
    await sale(db, settings, programme.family_post, local(2026, 1, 1, 0, 0, 0), 20, 2)

    by_month = await report(client, admin, group_by="month", **YEAR_2026)
    assert [(r["month"], r["discount_total"]) for r in by_month["rows"]] == [
        ("2026-01", 2),
        ("2026-04", 70),
    ]
    april = await report(client, admin, **{"from": "2026-04-01", "to": "2026-04-01"})
    assert april["rows"] == [april["totals"]]
    assert april["totals"]["discount_total"] == 70
    march = await report(client, admin, **{"from": "2026-03-01", "to": "2026-03-31"})
    assert march["totals"]["redemptions"] == 0
    year_2025 = await report(client, admin, **{"from": "2025-01-01", "to": "2025-12-31"})
    assert year_2025["totals"]["discount_total"] == 1


async def test_partial_months_at_both_ends_count_only_their_days(
    client: TestClient, admin, db, settings, programme: Programme
) -> None:
    for day, discount in ((14, 1), (15, 10), (31, 100)):
        await sale(db, settings, programme.veteran_post, local(2026, 1, day, 12), 500, discount)
    for month, day, discount in ((2, 1, 1000), (3, 10, 10_000), (3, 11, 100_000)):
        await sale(
            db, settings, programme.veteran_post, local(2026, month, day, 12), 500_000, discount
        )

    body = await report(
        client, admin, group_by="month", **{"from": "2026-01-15", "to": "2026-03-10"}
    )

    assert [(r["month"], r["discount_total"]) for r in body["rows"]] == [
        ("2026-01", 110),
        ("2026-02", 1000),
        ("2026-03", 10_000),
    ]
    within_one_month = await report(client, admin, **{"from": "2026-01-15", "to": "2026-01-30"})
    assert within_one_month["totals"]["discount_total"] == 10


async def test_every_combination_of_groupings_adds_up_to_the_same_totals(
    client: TestClient, admin, db, settings, programme: Programme
) -> None:
    p = programme
    first = await sale(db, settings, programme.veteran_post, local(2026, 5, 1, 8), 300, 30)
    await sale(db, settings, programme.family_post, local(2026, 5, 2, 8), 400, 40)
    await sale(db, settings, programme.veteran_diner, local(2026, 6, 2, 8), 600, 60)
    await sale(db, settings, programme.veteran_diner_2, local(2026, 7, 2, 8), 900, 500)
    await record_reversal(db, settings, first, at=local(2026, 7, 3, 8))
    expected = {
        "redemptions": 4,
        "reversals": 1,
        "purchase_total": 1900,
        "discount_total": 600,
        "offline": 0,
        "conflicts": 0,
    }

    for size in range(5):
        for names in itertools.permutations(("partner", "offer", "category", "month"), size):
            body = await report(client, admin, group_by=",".join(names), **YEAR_2026)
            assert body["group_by"] == list(names)
            assert body["totals"] == expected, names
            for measure, total in expected.items():
                assert sum(r[measure] for r in body["rows"]) == total, (names, measure)
            keys = [tuple(r[k] for k in r if k not in expected) for r in body["rows"]]
            assert len(set(keys)) == len(keys), names

    by_category = await report(client, admin, group_by="category", **YEAR_2026)
    assert {r["category"]: r["discount_total"] for r in by_category["rows"]} == {
        "veteran": 560,
        "martyr_family": 40,
    }
    by_offer = await report(client, admin, group_by="offer", **YEAR_2026)
    titles = {r["offer_id"]: (r["offer_title"], r["discount_total"]) for r in by_offer["rows"]}
    assert titles == {
        p.post_offer: ("邮政寄递九折", 40),
        p.diner_offer: ("堂食八五折", 60),
        p.diner_offer_2: ("=SUM(A1)", 500),
    }


async def test_no_grouping_answers_one_row_of_totals_even_when_empty(
    client: TestClient, admin
) -> None:
    body = await report(client, admin, **YEAR_2026)
    zeros = {
        "redemptions": 0,
        "reversals": 0,
        "purchase_total": 0,
        "discount_total": 0,
        "offline": 0,
        "conflicts": 0,
    }
    assert body["rows"] == [zeros] and body["totals"] == zeros and body["group_by"] == []
    grouped = await report(client, admin, group_by="partner", **YEAR_2026)
    assert grouped["rows"] == [] and grouped["totals"] == zeros


async def test_default_period_is_this_calendar_year_in_the_programme_time_zone(
    client: TestClient, admin, db, settings, programme: Programme
) -> None:
    now = datetime.now(UTC)
    year = now.astimezone(SHANGHAI).year
    await sale(db, settings, programme.veteran_post, now, 100, 10)
    await sale(db, settings, programme.veteran_post, local(year - 1, 12, 31, 23, 59, 59), 100, 1)

    body = await report(client, admin)

    assert (body["from"], body["to"]) == (f"{year}-01-01", f"{year}-12-31")
    assert body["totals"]["discount_total"] == 10
    from_only = await report(client, admin, **{"from": f"{year - 1}-06-01"})
    assert from_only["to"] == f"{year - 1}-12-31"
    assert from_only["totals"]["discount_total"] == 1
    to_only = await report(client, admin, to=f"{year}-12-31")
    assert to_only["from"] == f"{year}-01-01"


async def test_admin_filters_by_partner_and_by_offer(
    client: TestClient, admin, db, settings, programme: Programme
) -> None:
    p = programme
    await sale(db, settings, programme.veteran_post, local(2026, 3, 1), 100, 10)
    await sale(db, settings, programme.veteran_diner, local(2026, 3, 1), 200, 20)
    await sale(db, settings, programme.veteran_diner_2, local(2026, 3, 1), 900, 500)

    diner = await report(client, admin, group_by="partner", partner_id=p.diner, **YEAR_2026)
    assert [(r["partner_id"], r["discount_total"]) for r in diner["rows"]] == [(p.diner, 520)]
    offer = await report(client, admin, offer_id=p.diner_offer, **YEAR_2026)
    assert offer["totals"]["discount_total"] == 20
    nobody = await report(client, admin, partner_id="ptn_unknown", **YEAR_2026)
    assert nobody["totals"]["redemptions"] == 0


async def test_partner_key_sees_only_its_own_rows_whatever_it_asks(
    client: TestClient, db, settings, programme: Programme
) -> None:
    p = programme
    await sale(db, settings, programme.veteran_post, local(2026, 3, 1), 100, 10)
    await sale(db, settings, programme.veteran_diner, local(2026, 3, 1), 200, 20)

    own = await report(client, p.post_key, group_by="partner,offer", **YEAR_2026)
    assert [(r["partner_id"], r["discount_total"]) for r in own["rows"]] == [(p.post, 10)]
    assert own["totals"]["discount_total"] == 10
    other = await report(client, p.post_key, group_by="partner", partner_id=p.diner, **YEAR_2026)
    assert other["rows"] == [] and other["totals"]["discount_total"] == 0
    other_offer = await report(client, p.post_key, offer_id=p.diner_offer, **YEAR_2026)
    assert other_offer["totals"]["discount_total"] == 0
    for fmt in ("csv", "xlsx"):
        response = await client.get(
            "/v1/reports/discounts",
            params={"format": fmt, "group_by": "partner", **YEAR_2026},
            headers=p.post_key,
        )
        assert response.status == 200
        data = await response.read()
        if fmt == "xlsx":
            cells = openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)
            data = repr(list(cells)).encode()
        assert p.post.encode() in data and p.diner.encode() not in data


async def test_scanner_keys_and_anonymous_callers_get_no_report(
    client: TestClient, programme: Programme
) -> None:
    assert (await problem(client, programme.post_scanner, 403))["code"] == "forbidden"
    assert (await problem(client, {}, 401))["code"] == "unauthenticated"
    summary = await client.get("/v1/reports/summary", headers=programme.post_key)
    assert summary.status == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "partner,holder"}, "group_by"),
        ({"group_by": "month,month"}, "group_by"),
        ({"from": "2026-03-01", "to": "2026-02-28"}, "to"),
        ({"from": "2026-02-30"}, "from"),
        ({"from": "1999-12-31"}, "from"),
        ({"to": "26-01-01"}, "to"),
        ({"format": "pdf"}, "format"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_parameters_are_refused_with_the_field_named(
    client: TestClient, admin, params: dict[str, str], field: str
) -> None:
    body = await problem(client, admin, 422, **params)
    assert body["code"] == "validation_error"
    assert field in [error["field"] for error in body["errors"]]


async def test_accept_header_that_names_no_format_of_ours_is_not_acceptable(
    client: TestClient, admin
) -> None:
    response = await client.get(
        "/v1/reports/discounts", headers={**admin, "Accept": "text/html, application/pdf"}
    )
    assert response.status == 406
    assert (await response.json())["code"] == "not_acceptable"
    browser = await client.get(
        "/v1/reports/discounts", headers={**admin, "Accept": "text/html, */*;q=0.8"}
    )
    assert browser.status == 200 and browser.content_type == "application/json"


async def _redeem_some(db, settings, programme: Programme) -> None:
    await sale(db, settings, programme.veteran_post, local(2026, 1, 5), 12345, 1235)
    await sale(db, settings, programme.veteran_diner_2, local(2026, 2, 5), 100_000_00, 500)
    gone = await sale(db, settings, programme.veteran_diner, local(2026, 2, 6), 7, 1)
    await record_reversal(db, settings, gone, at=local(2026, 3, 1))


@pytest.mark.parametrize("how", ["format", "accept"])
async def test_csv_has_a_bom_a_header_the_same_rows_and_a_totals_row(
    client: TestClient, admin, db, settings, programme: Programme, how: str
) -> None:
    await _redeem_some(db, settings, programme)
    params = {"group_by": "partner,offer,month", **YEAR_2026}
    expected = await report(client, admin, **params)
    if how == "format":
        response = await client.get(
            "/v1/reports/discounts", params={**params, "format": "csv"}, headers=admin
        )
    else:
        response = await client.get(
            "/v1/reports/discounts", params=params, headers={**admin, "Accept": "text/csv"}
        )

    assert response.status == 200
    assert response.content_type == "text/csv" and response.charset == "utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="youdai-discounts-2026-01-01-2026-12-31.csv"'
    )
    data = await response.read()
    assert data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert list(lines[0]) == [
        "partner_id", "partner_name", "partner_region", "offer_id", "offer_title", "month",
        "redemptions",
        "reversals", "purchase_total", "discount_total", "offline", "conflicts",
        "purchase_total_yuan", "discount_total_yuan",
    ]  # fmt: skip
    *rows, total = lines
    assert len(rows) == len(expected["rows"])
    for line, want in zip(rows, expected["rows"], strict=True):
        title = want["offer_title"]
        assert line["offer_title"] == ("'" + title if title.startswith("=") else title)
        assert line["partner_name"] == want["partner_name"]
        for measure in ("redemptions", "reversals", "purchase_total", "discount_total"):
            assert int(line[measure]) == want[measure]
        assert line["discount_total_yuan"] == yuan(want["discount_total"])
    assert total["partner_id"] == "total"
    assert int(total["discount_total"]) == expected["totals"]["discount_total"] == 1735
    assert total["purchase_total_yuan"] == "100123.45"
    assert any(line["discount_total_yuan"] == "-0.01" for line in rows)


def yuan(fen: int) -> str:
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


@pytest.mark.parametrize("how", ["format", "accept"])
async def test_xlsx_opens_with_the_same_rows_and_money_formatted_as_yuan(
    client: TestClient, admin, db, settings, programme: Programme, how: str
) -> None:
    await _redeem_some(db, settings, programme)
    params = {"group_by": "category,month", **YEAR_2026}
    expected = await report(client, admin, **params)
    if how == "format":
        response = await client.get(
            "/v1/reports/discounts", params={**params, "format": "xlsx"}, headers=admin
        )
    else:
        response = await client.get(
            "/v1/reports/discounts", params=params, headers={**admin, "Accept": XLSX}
        )

    assert response.status == 200 and response.content_type == XLSX
    assert response.headers["Content-Disposition"].endswith(
        'filename="youdai-discounts-2026-01-01-2026-12-31.xlsx"'
    )
    book = openpyxl.load_workbook(io.BytesIO(await response.read()))
    sheet = book.active
    header, *lines = list(sheet.iter_rows(values_only=True))
    assert header == (
        "category", "month", "redemptions", "reversals", "purchase_total", "discount_total",
        "offline", "conflicts", "purchase_total_yuan", "discount_total_yuan",
    )  # fmt: skip
    *rows, total = [dict(zip(header, line, strict=True)) for line in lines]
    for line, want in zip(rows, expected["rows"], strict=True):
        assert (line["category"], line["month"]) == (want["category"], want["month"])
        for measure in ("redemptions", "reversals", "purchase_total", "discount_total"):
            assert line[measure] == want[measure]
        # The nearest double to the exact yuan, shown to the fen.
        assert f"{line['discount_total_yuan']:.2f}" == yuan(want["discount_total"])
        assert line["discount_total_yuan"] == want["discount_total"] / 100
    assert total["category"] == "total" and total["discount_total"] == 1735
    assert f"{total['purchase_total_yuan']:.2f}" == "100123.45"
    money_cell = sheet.cell(row=2, column=header.index("discount_total_yuan") + 1)
    assert "¥" in money_cell.number_format and "0.00" in money_cell.number_format


async def test_summary_discount_total_equals_the_discount_report_for_the_same_period(
    client: TestClient, admin, db, settings, programme: Programme
) -> None:
    await _redeem_some(db, settings, programme)
    await make_partner(db, name="文旅平台", category="culture_tourism", status="pending")
    await make_partner(db, name="公交集团", category="transport", status="suspended")

    for period in (YEAR_2026, {"from": "2026-02-01", "to": "2026-02-28"}, {}):
        response = await client.get("/v1/reports/summary", params=period, headers=admin)
        assert response.status == 200, await response.text()
        summary = await response.json()
        discounts = await report(client, admin, **period)
        assert summary["discount_total"] == discounts["totals"]["discount_total"]
        assert summary["redemptions"] == discounts["totals"]["redemptions"]
        assert summary["reversals"] == discounts["totals"]["reversals"]
        assert (summary["from"], summary["to"]) == (discounts["from"], discounts["to"])

    summary = await (await client.get("/v1/reports/summary", headers=admin)).json()
    assert summary["currency"] == "CNY"
    assert summary["partners"]["enrolled"] == 4 and summary["partners"]["active"] == 2
    by_category = summary["partners"]["by_category"]
    assert by_category["postal"] == {"enrolled": 1, "active": 1}
    assert by_category["culture_tourism"] == {"enrolled": 1, "active": 0}
    assert by_category["transport"] == {"enrolled": 1, "active": 0}
    assert by_category["health"] == {"enrolled": 0, "active": 0}
    assert summary["holders"] == 2 and summary["vouchers_issued"] == 4
    february = await client.get(
        "/v1/reports/summary", params={"from": "2026-02-01", "to": "2026-02-28"}, headers=admin
    )
    assert (await february.json())["discount_total"] == 500 + 1
    last_year = await client.get(
        "/v1/reports/summary", params={"from": "2000-01-01", "to": "2000-12-31"}, headers=admin
    )
    assert (await last_year.json())["partners"]["enrolled"] == 0


async def test_monthly_rollup_follows_the_daily_rollup_and_reconcile_finds_nothing(
    client: TestClient, db, settings, programme: Programme
) -> None:
    await _redeem_some(db, settings, programme)
    assert await mismatches(db) == {}  # the rows not folded yet are no mismatch
    await fold_all(db)
    assert await mismatches(db) == {}
    months = await db.fetch(
        "SELECT to_char(month, 'YYYY-MM') AS month, sum(discount_total) AS discount "
        "FROM discount_rollup_monthly GROUP BY 1 ORDER BY 1"
    )
    assert [(m["month"], m["discount"]) for m in months] == [
        ("2026-01", 1235),
        ("2026-02", 501),
        ("2026-03", -1),
    ]
    await db.execute("UPDATE discount_rollup_monthly SET discount_total = discount_total + 1")
    assert set(await mismatches(db)) == {"monthly rollup"}


async def test_an_xlsx_export_taken_while_tills_redeem_adds_up_in_every_file(
    client: TestClient, admin, db, settings, programme: Programme
) -> None:
    # The file is built in a background process (service.background) from rows read in one
    # statement: whatever commits meanwhile, each file's totals row is the sum of its rows.
    await _redeem_some(db, settings, programme)

    async def tills() -> None:
        for n in range(30):
            voucher = (programme.veteran_post, programme.family_post)[n % 2]
            await sale(db, settings, voucher, local(2026, 3, 1 + n % 28, 12), 1000 + n, 100)

    writing = asyncio.create_task(tills())
    params = {"group_by": "partner,month", **YEAR_2026, "format": "xlsx"}
    seen = set()
    while not writing.done() or not seen:
        response = await client.get("/v1/reports/discounts", params=params, headers=admin)
        assert response.status == 200
        sheet = openpyxl.load_workbook(io.BytesIO(await response.read())).active
        header, *lines = list(sheet.iter_rows(values_only=True))
        *rows, total = [dict(zip(header, line, strict=True)) for line in lines]
        for measure in ("redemptions", "reversals", "purchase_total", "discount_total"):
            assert total[measure] == sum(row[measure] for row in rows), measure
        seen.add(total["redemptions"])
    await writing
    final = await report(client, admin, **{k: v for k, v in params.items() if k != "format"})
    assert final["totals"]["redemptions"] == 3 + 30
