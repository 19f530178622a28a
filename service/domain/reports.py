"""Discount reports: groupings, periods, formats and the shape of a row. Pure, no I/O.

A report period is a range of local calendar dates in the programme's time zone, both
ends included. Totals are net: a reversal subtracts from the local day (so the month)
on which it happened, not from the redemption's, so a month once reported never
changes afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.domain.errors import ApiError, validation_error
from service.domain.language import Said
from service.domain.negotiation import media_quality
from service.domain.periods import local_date, local_midnight

#: The groupings a report can combine, in the order their columns appear by default.
GROUPS = ("partner", "offer", "category", "month")
#: The columns each grouping contributes to a row.
GROUP_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "partner": ("partner_id", "partner_name", "partner_region"),
    "offer": ("offer_id", "offer_title"),
    "category": ("category",),
    "month": ("month",),
}
#: What every row and the totals carry; money in fen, net of reversals. `offline` and
#: `conflicts`: of the redemptions, how many a till made offline, and how many of those
#: the rules would have refused online (docs/rules.md).
MEASURES = (
    "redemptions",
    "reversals",
    "purchase_total",
    "discount_total",
    "offline",
    "conflicts",
)
#: Measures a statement signed before offline tills existed does not state.
LATER_MEASURES = ("offline", "conflicts")
MONEY_MEASURES = ("purchase_total", "discount_total")

#: Report dates outside these are refused: no programme ran before, and month arithmetic
#: stays far from date.max.
FIRST_DATE = date(2000, 1, 1)
LAST_DATE = date(2999, 12, 31)

FORMATS = ("json", "csv", "xlsx")
MEDIA_TYPES: Mapping[str, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def parse_group_by(text: str | None) -> tuple[str, ...]:
    """`partner,month` -> ("partner", "month"); empty or None: no grouping (one row).
    Raises ValueError naming the problem."""
    if text is None or not text.strip():
        return ()
    names = tuple(part.strip() for part in text.split(","))
    for name in names:
        if name not in GROUPS:
            raise ValueError(f"{name!r} is not one of {', '.join(GROUPS)}")
    if len(set(names)) != len(names):
        raise ValueError(Said("names a grouping twice", "重复指定了同一分组"))
    return names


@dataclass(frozen=True, slots=True)
class Period:
    """Local calendar dates `first` through `last`, both included."""

    first: date
    last: date

    def instants(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end): from the local midnight starting `first` to the one after `last`."""
        return local_midnight(self.first, tz), local_midnight(self.last + timedelta(days=1), tz)

    def split(self) -> PeriodSplit:
        """The whole calendar months inside the period, and the days before and after them."""
        stop = self.last + timedelta(days=1)
        months_from = _month_start(self.first)
        if months_from < self.first:
            months_from = _next_month(months_from)
        months_to = _month_start(stop)
        if months_from >= months_to:  # no whole month: every day is read day by day
            return PeriodSplit((self.first, stop), (stop, stop), (stop, stop))
        return PeriodSplit((self.first, months_from), (months_from, months_to), (months_to, stop))


@dataclass(frozen=True, slots=True)
class PeriodSplit:
    """Half-open date ranges: `head` days, whole `months` (their first days), `tail` days."""

    head: tuple[date, date]
    months: tuple[date, date]
    tail: tuple[date, date]


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def period_of(first: date | None, last: date | None, now: datetime, tz: ZoneInfo) -> Period:
    """The period asked for. Without `from`, it starts on 1 January of the year of `to`;
    without `to`, it ends on 31 December of the year of `from`; with neither, it is this
    calendar year in the programme's time zone. Raises ApiError(validation_error)."""
    if first is None and last is None:
        year = local_date(now, tz).year
        first, last = date(year, 1, 1), date(year, 12, 31)
    elif first is None:
        assert last is not None
        first = date(last.year, 1, 1)
    elif last is None:
        last = date(first.year, 12, 31)
    for name, value in (("from", first), ("to", last)):
        if not FIRST_DATE <= value <= LAST_DATE:
            raise validation_error(
                name,
                Said(
                    f"must be from {FIRST_DATE} to {LAST_DATE}",
                    f"必须在 {FIRST_DATE} 到 {LAST_DATE} 之间",
                ),
            )
    if first > last:
        raise validation_error("to", Said("must not be before from", "不能早于 from"))
    return Period(first, last)


def parse_date(value: str, name: str) -> date:
    """A `YYYY-MM-DD` date (as the command line gives it). Raises ApiError."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise validation_error(
            name, Said("must be a date, YYYY-MM-DD", "必须是日期，格式 YYYY-MM-DD")
        )
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise validation_error(name, Said("is not a calendar date", "不是有效的日历日期")) from None


def month_label(first_day: date) -> str:
    return f"{first_day.year:04d}-{first_day.month:02d}"


def columns(group_by: Sequence[str]) -> tuple[str, ...]:
    """The columns of a row, in order: the groupings as asked, then the measures."""
    return (*(column for name in group_by for column in GROUP_COLUMNS[name]), *MEASURES)


def totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The measures summed over rows (exact: integers)."""
    summed = dict.fromkeys(MEASURES, 0)
    for row in rows:
        for measure in MEASURES:
            summed[measure] += row[measure]
    return summed


def yuan(fen: int) -> str:
    """Fen as an exact decimal string of yuan: 123456 -> "1234.56", -5 -> "-0.05"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def filename(period: Period, fmt: str) -> str:
    return f"youdai-discounts-{period.first.isoformat()}-{period.last.isoformat()}.{fmt}"


def negotiate(fmt: str | None, accept: str | None) -> str:
    """The format to answer in: `format` if given, else the best of the Accept header
    (JSON when it names none of ours but allows anything). Raises ApiError(not_acceptable)."""
    if fmt is not None:
        return fmt
    if accept is None or not accept.strip():
        return "json"
    best, best_q = None, 0.0
    for fmt_name in FORMATS:  # in order: JSON wins ties
        quality = media_quality(MEDIA_TYPES[fmt_name], accept)
        if quality > best_q:
            best, best_q = fmt_name, quality
    if best is None:
        raise ApiError(
            "not_acceptable",
            Said(
                "Accept names none of application/json, text/csv or "
                f"{MEDIA_TYPES['xlsx']}; or use ?format=json|csv|xlsx",
                "Accept 没有列出 application/json、text/csv 或 "
                f"{MEDIA_TYPES['xlsx']}；或使用 ?format=json|csv|xlsx",
            ),
        )
    return best
