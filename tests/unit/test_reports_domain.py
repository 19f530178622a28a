"""Report periods, groupings, formats and money text: pure functions."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from service.domain.errors import ApiError
from service.domain.reports import (
    Period,
    PeriodSplit,
    negotiate,
    parse_date,
    parse_group_by,
    period_of,
    yuan,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.mark.parametrize(
    ("first", "last", "split"),
    [
        # A whole year: twelve whole months, no loose days.
        (date(2026, 1, 1), date(2026, 12, 31),
         ((date(2026, 1, 1),) * 2, (date(2026, 1, 1), date(2027, 1, 1)), (date(2027, 1, 1),) * 2)),
        # Loose days at both ends around one whole month.
        (date(2026, 1, 15), date(2026, 3, 10),
         ((date(2026, 1, 15), date(2026, 2, 1)), (date(2026, 2, 1), date(2026, 3, 1)),
          (date(2026, 3, 1), date(2026, 3, 11)))),
        # Inside one month: every day read day by day.
        (date(2026, 2, 2), date(2026, 2, 27),
         ((date(2026, 2, 2), date(2026, 2, 28)), (date(2026, 2, 28),) * 2,
          (date(2026, 2, 28),) * 2)),
        # The last day of a month ends a whole month; December rolls into January.
        (date(2025, 12, 1), date(2026, 2, 28),
         ((date(2025, 12, 1),) * 2, (date(2025, 12, 1), date(2026, 3, 1)),
          (date(2026, 3, 1),) * 2)),
        # One day.
        (date(2026, 5, 31), date(2026, 5, 31),
         ((date(2026, 5, 31), date(2026, 6, 1)), (date(2026, 6, 1),) * 2,
          (date(2026, 6, 1),) * 2)),
    ],
)  # fmt: skip
def test_period_splits_into_loose_days_and_whole_months(first, last, split) -> None:
    assert Period(first, last).split() == PeriodSplit(*split)


def test_period_instants_run_from_local_midnight_to_the_next_after_the_last_day() -> None:
    start, end = Period(date(2026, 1, 1), date(2026, 1, 31)).instants(SHANGHAI)
    assert start == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert end == datetime(2026, 1, 31, 16, tzinfo=UTC)


def test_default_period_is_the_local_calendar_year_even_when_utc_is_still_last_year() -> None:
    # 16:30 UTC on 31 December is 00:30 on 1 January in Shanghai.
    now = datetime(2025, 12, 31, 16, 30, tzinfo=UTC)
    assert period_of(None, None, now, SHANGHAI) == Period(date(2026, 1, 1), date(2026, 12, 31))
    assert period_of(date(2024, 3, 1), None, now, SHANGHAI).last == date(2024, 12, 31)
    assert period_of(None, date(2024, 3, 1), now, SHANGHAI).first == date(2024, 1, 1)


@pytest.mark.parametrize(
    ("first", "last"),
    [(date(2026, 2, 1), date(2026, 1, 31)), (date(1999, 12, 31), None), (None, date(3000, 1, 1))],
)
def test_periods_out_of_order_or_out_of_range_are_refused(first, last) -> None:
    with pytest.raises(ApiError) as refused:
        period_of(first, last, datetime(2026, 6, 1, tzinfo=UTC), SHANGHAI)
    assert refused.value.code == "validation_error"


def test_group_by_keeps_the_order_given_and_refuses_unknown_or_repeated_names() -> None:
    assert parse_group_by("month, partner") == ("month", "partner")
    assert parse_group_by("") == () and parse_group_by(None) == ()
    for bad in ("region", "month,month", "partner,", ","):
        with pytest.raises(ValueError):
            parse_group_by(bad)


def test_parse_date_wants_exactly_yyyy_mm_dd() -> None:
    assert parse_date("2026-02-28", "from") == date(2026, 2, 28)
    for bad in ("2026-02-30", "20260228", "2026-2-28", "2026-W09-6"):
        with pytest.raises(ApiError):
            parse_date(bad, "from")


@pytest.mark.parametrize(
    ("fmt", "accept", "chosen"),
    [
        ("csv", XLSX, "csv"),  # the parameter wins
        (None, None, "json"),
        (None, "", "json"),
        (None, "text/csv", "csv"),
        (None, XLSX, "xlsx"),
        (None, "text/*", "csv"),
        (None, "*/*", "json"),
        (None, "text/html,application/xhtml+xml,*/*;q=0.8", "json"),
        (None, f"application/json;q=0.5, {XLSX}", "xlsx"),
        (None, "text/csv;q=0, */*", "json"),
        (None, "text/csv;q=bogus, application/json;q=0.1", "json"),
    ],
)
def test_format_comes_from_the_parameter_or_the_best_accepted_type(fmt, accept, chosen) -> None:
    assert negotiate(fmt, accept) == chosen


def test_an_accept_header_naming_none_of_the_formats_is_not_acceptable() -> None:
    for accept in ("text/html", "application/json;q=0", "image/*"):
        with pytest.raises(ApiError) as refused:
            negotiate(None, accept)
        assert refused.value.code == "not_acceptable"


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "0.00"), (5, "0.05"), (-5, "-0.05"), (123456, "1234.56"), (-100, "-1.00"),
     (9_007_199_254_740_993, "90071992547409.93")],
)  # fmt: skip
def test_yuan_text_is_exact_from_integer_fen(fen: int, text: str) -> None:
    assert yuan(fen) == text
