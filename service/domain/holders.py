"""Card holder rules shared by the API and the CSV import: field formats, the status
life cycle, and reading an import file."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from service.domain.categories import HOLDER_CATEGORIES
from service.domain.errors import FieldError
from service.domain.language import Said, message_of
from service.domain.lifecycle import Lifecycle
from service.domain.text import display_text_problem

#: active ⇄ suspended; either → revoked; nothing comes back from revoked.
LIFECYCLE = Lifecycle(
    "A holder",
    {
        "active": frozenset({"suspended", "revoked"}),
        "suspended": frozenset({"active", "revoked"}),
        "revoked": frozenset(),
    },
)
STATUSES = LIFECYCLE.statuses
check_transition = LIFECYCLE.check

CARD_NUMBER_PATTERN = r"^[A-Za-z0-9-]{4,32}$"
#: New PINs (docs/api.md): at least 6 digits. Holders keep older 4-digit PINs until changed.
PIN_PATTERN = r"^[0-9]{6,12}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DISPLAY_NAME_MAX = 100
REGION_MAX = 100

_CARD_NUMBER = re.compile(CARD_NUMBER_PATTERN)
_PIN = re.compile(PIN_PATTERN)
_DATE = re.compile(DATE_PATTERN)

#: The columns of an import file (docs/api.md), in any order.
CSV_COLUMNS = ("card_number", "category", "display_name", "region", "valid_until", "pin")

#: The holder fields an import or an edit may change (besides the PIN).
DATA_FIELDS = ("category", "display_name", "region", "valid_until")

#: What names or identifies a holder, or opens their card: a bureau_auditor never reads
#: these (docs/product.md), not even as the before and after of an audit event.
PERSONAL_FIELDS = frozenset({"card_number", "display_name", "region", "pin"})
WITHHELD = "withheld"


def withhold_personal_data(changes: dict[str, Any]) -> dict[str, Any]:
    """An audit event's changes with every personal field's values replaced by
    "withheld": that the field changed stays on the record, what it said does not."""
    return {name: WITHHELD if name in PERSONAL_FIELDS else value for name, value in changes.items()}


# Each check takes the text as given and returns the value to store, or raises
# ValueError with a message a bureau clerk can act on.


def check_card_number(value: str) -> str:
    """Card numbers are compared without regard to case: stored in upper case."""
    value = value.strip()
    if not _CARD_NUMBER.match(value):
        raise ValueError(
            Said("must be 4–32 letters, digits or '-'", "必须是 4–32 个字母、数字或“-”")
        )
    return value.upper()


def normalise_card_number(value: str) -> str:
    """How a card number typed anywhere (sign-in, search) is compared with the stored one."""
    return value.strip().upper()


def check_pin(value: str) -> str:
    value = value.strip()
    if not _PIN.match(value):
        raise ValueError(Said("must be 6–12 digits", "必须是 6–12 位数字"))
    return value


def check_category(value: str) -> str:
    value = value.strip()
    if value not in HOLDER_CATEGORIES:
        raise ValueError(
            Said(
                f"must be one of {', '.join(HOLDER_CATEGORIES)}",
                f"必须是以下之一：{', '.join(HOLDER_CATEGORIES)}",
            )
        )
    return value


def check_display_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(Said("must not be empty", "不能为空"))
    return _check_text(value, DISPLAY_NAME_MAX)


def check_region(value: str) -> str:
    return _check_text(value.strip(), REGION_MAX)


def check_valid_until(value: str) -> date:
    value = value.strip()
    if not _DATE.match(value):
        raise ValueError(Said("must be a date written YYYY-MM-DD", "必须是 YYYY-MM-DD 格式的日期"))
    try:
        return date.fromisoformat(value)
    except ValueError:
        # Written as asked, but no such day (2026-02-30): asking for the format again
        # would not help the person fixing the file.
        raise ValueError(
            Said(f"{value} is not a real date", f"{value} 不是真实存在的日期")
        ) from None


def _check_text(value: str, max_length: int) -> str:
    if len(value) > max_length:
        raise ValueError(
            Said(f"must be at most {max_length} characters", f"最多 {max_length} 个字符")
        )
    # Hidden characters (docs/api.md) and lone surrogates cannot be shown as written.
    problem = display_text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    if any(unicodedata.category(char) == "Cs" for char in value):
        raise ValueError(Said("must not contain lone surrogates", "不得包含孤立代理项"))
    return value


_CHECKS: dict[str, Callable[[str], Any]] = {
    "card_number": check_card_number,
    "category": check_category,
    "display_name": check_display_name,
    "region": check_region,
    "valid_until": check_valid_until,
    "pin": check_pin,
}


@dataclass(frozen=True, slots=True)
class HolderRow:
    """One checked line of an import file."""

    line: int
    card_number: str
    category: str
    display_name: str
    region: str
    valid_until: date
    pin: str


#: At most this many errors are listed for a bad file (docs/api.md); `error_count` counts all.
MAX_LISTED_ERRORS = 1000


@dataclass(frozen=True, slots=True)
class FileCheck:
    """What checking a whole import file found: its number of holder rows, or its errors
    (the first MAX_LISTED_ERRORS of them, in file order, and how many there are in all)."""

    rows: int
    errors: tuple[FieldError, ...]
    error_count: int


def check_holders_csv(data: bytes, max_listed: int = MAX_LISTED_ERRORS) -> FileCheck:
    """Read the whole file once, keeping no row: a bad file of any size answers with a
    bounded list of errors, a good one with its row count."""
    rows = 0
    listed: list[FieldError] = []
    count = 0
    for item in read_holders_csv(data):
        if isinstance(item, HolderRow):
            rows += 1
        else:
            count += 1
            if len(listed) < max_listed:
                listed.append(item)
    return FileCheck(rows=0 if count else rows, errors=tuple(listed), error_count=count)


def iter_holder_rows(data: bytes) -> Iterator[HolderRow]:
    """The rows of a file check_holders_csv found good, one at a time (without its
    table of card numbers seen: the check has found no card twice)."""
    for item in read_holders_csv(data, find_duplicates=False):
        if not isinstance(item, HolderRow):
            raise ValueError(f"line {item.line}: {item.field}: {item.message}")
        yield item


def read_holders_csv(
    data: bytes, *, find_duplicates: bool = True
) -> Iterator[HolderRow | FieldError]:
    """Read an import file: UTF-8 with or without a BOM, a header row naming exactly
    CSV_COLUMNS in any order, then one holder per line.

    Yields each good row and each error in file order, with the line number a
    spreadsheet shows (the header is line 1); blank lines are skipped. The text is
    decoded as it is read, so only the current line is held besides `data` (and, to
    find a card given twice, the card numbers seen).
    """
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            yield FieldError(
                "file", Said("is empty: the header row is missing", "为空：缺少表头行"), line=1
            )
            return
        names = [name.strip() for name in header]
        errors = _header_errors(names)
        if errors:
            yield from errors
            return
        yield from _read_rows(reader, names, {} if find_duplicates else None)
    except UnicodeDecodeError:
        yield _not_utf8(data)
    except csv.Error as error:  # in the header row (errors in rows are caught per line)
        yield FieldError("file", Said(f"bad CSV: {error}", f"CSV 格式错误：{error}"), line=1)


def _read_rows(
    reader: Any, names: list[str], first_line_of: dict[str, int] | None
) -> Iterator[HolderRow | FieldError]:
    line = 1
    while True:
        line += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield FieldError("file", Said(f"bad CSV: {error}", f"CSV 格式错误：{error}"), line=line)
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            yield FieldError(
                "row",
                Said(
                    f"has {len(cells)} values, the header has {len(names)}",
                    f"有 {len(cells)} 个值，表头有 {len(names)} 个",
                ),
                line,
            )
            continue
        values: dict[str, Any] = {}
        row_errors = []
        for name, cell in zip(names, cells, strict=True):
            try:
                values[name] = _CHECKS[name](cell)
            except ValueError as problem:
                row_errors.append(FieldError(name, message_of(problem), line=line))
        yield from row_errors
        card = values.get("card_number")
        if card is not None and first_line_of is not None:
            if card in first_line_of:
                yield FieldError(
                    "card_number", f"{card} is also on line {first_line_of[card]}", line=line
                )
                continue
            first_line_of[card] = line
        if not row_errors:
            yield HolderRow(line=line, **values)


#: Said of a file that is not UTF-8 (most often a CSV saved by Excel on Chinese Windows,
#: which writes GBK): in both languages, since a spreadsheet's menus may be in either.
NOT_UTF8 = (
    'is not UTF-8 text: save it as "CSV UTF-8" (Excel: File > Save As) and send it again'
    ' / 文件不是 UTF-8 编码：请另存为"CSV UTF-8"格式（Excel：文件 > 另存为）后重新导入'
)


def _not_utf8(data: bytes) -> FieldError:
    """The error for a file that is not UTF-8, on the line of its first bad byte."""
    try:
        data.decode("utf-8-sig")
        start = len(data)
    except UnicodeDecodeError as error:
        start = error.start
    line = data[:start].count(b"\n") + 1
    return FieldError("file", Said(NOT_UTF8, NOT_UTF8), line=line)  # both languages already


def _header_errors(names: list[str]) -> list[FieldError]:
    errors = []
    seen: set[str] = set()
    for name in names:
        if name not in CSV_COLUMNS:
            errors.append(FieldError(name or "(empty)", "is not a column of the import", line=1))
        elif name in seen:
            errors.append(FieldError(name, Said("is given twice", "出现了两次"), line=1))
        seen.add(name)
    for name in CSV_COLUMNS:
        if name not in seen:
            errors.append(FieldError(name, Said("column is missing", "缺少此列"), line=1))
    return errors
