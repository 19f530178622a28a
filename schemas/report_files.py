"""The discount report as CSV and XLSX files, with the same rows as its JSON.

Columns: the JSON row's fields in order (money in fen, as in the API), then
`purchase_total_yuan` and `discount_total_yuan`. When the report is grouped, a last
row holds the totals, marked `total` in its first column.

- CSV is UTF-8 with a byte-order mark, so Excel shows Chinese names correctly. Yuan are
  exact decimal strings built from the integer fen ("1234.56"). Text that a spreadsheet
  would run as a formula (starting with = + - @) is prefixed with an apostrophe.
- XLSX is written row by row (XlsxWriter's constant_memory mode). Yuan are numbers in the
  yuan currency format. A number is a binary double, so fen/100 is not stored exactly,
  but it is the double nearest the exact value and Excel shows it to 15 significant
  digits: every amount below ¥10 000 000 000 000 displays exactly to the fen. The fen
  columns are exact integers for anyone who sums them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import xlsxwriter

from service.domain.reports import GROUP_COLUMNS, MONEY_MEASURES, columns, yuan

YUAN_COLUMNS = tuple(f"{measure}_yuan" for measure in MONEY_MEASURES)
YUAN_FORMAT = "[$¥-804]#,##0.00"
TOTAL_LABEL = "total"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def table(report: Mapping[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Header and rows of the file: the report's rows, then its totals when grouped."""
    group_by: Sequence[str] = report["group_by"]
    header = [*columns(group_by), *YUAN_COLUMNS]
    rows = [dict(row) for row in report["rows"]]
    if group_by:
        group_columns = [column for name in group_by for column in GROUP_COLUMNS[name]]
        total = dict.fromkeys(group_columns, "")
        total[group_columns[0]] = TOTAL_LABEL
        rows.append({**total, **report["totals"]})
    for row in rows:
        for measure, column in zip(MONEY_MEASURES, YUAN_COLUMNS, strict=True):
            row[column] = row[measure]
    return header, rows


def _text_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(report: Mapping[str, Any]) -> bytes:
    header, rows = table(report)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [
                yuan(row[column]) if column in YUAN_COLUMNS else _text_cell(row[column])
                for column in header
            ]
        )
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(report: Mapping[str, Any]) -> bytes:
    header, rows = table(report)
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"constant_memory": True})
    workbook.set_properties(
        {"title": f"youdai discounts {report['from_']} to {report['to']} ({report['currency']})"}
    )
    bold = workbook.add_format({"bold": True})
    money = workbook.add_format({"num_format": YUAN_FORMAT})
    money_bold = workbook.add_format({"num_format": YUAN_FORMAT, "bold": True})
    sheet = workbook.add_worksheet("discounts")
    sheet.freeze_panes(1, 0)
    for index, column in enumerate(header):
        width = 16 if column in YUAN_COLUMNS else max(12, len(column) + 2)
        sheet.set_column(index, index, 30 if column.endswith(("_name", "_title")) else width)
        sheet.write_string(0, index, column, bold)
    last = len(rows) - 1
    for number, row in enumerate(rows, start=1):
        is_total = bool(report["group_by"]) and number - 1 == last
        for index, column in enumerate(header):
            value = row[column]
            if column in YUAN_COLUMNS:
                sheet.write_number(number, index, value / 100, money_bold if is_total else money)
            elif isinstance(value, int):
                sheet.write_number(number, index, value, bold if is_total else None)
            elif value is None or value == "":
                continue
            else:
                # write_string: a name starting with "=" stays text, never a formula.
                sheet.write_string(number, index, str(value), bold if is_total else None)
    workbook.close()
    return out.getvalue()
