"""Calendar periods are the programme's, not UTC's: a holder's "month" starts at local
midnight on the 1st, which in Shanghai is 16:00 UTC on the last day of the month before."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from service.domain.periods import (
    EVER,
    card_is_valid,
    end_of_local_day,
    local_date,
    local_midnight,
    parse_bound,
    period_start,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("now", "period", "expected"),
    [
        # 02:00 on 1 March in Shanghai is still 28 February in UTC: the month is March's.
        ("2026-03-01T02:00:00+08:00", "month", "2026-03-01T00:00:00+08:00"),
        ("2026-03-01T07:59:59+08:00", "month", "2026-03-01T00:00:00+08:00"),
        ("2026-02-28T23:59:59+08:00", "month", "2026-02-01T00:00:00+08:00"),
        ("2026-01-01T00:30:00+08:00", "year", "2026-01-01T00:00:00+08:00"),
        ("2025-12-31T23:30:00+08:00", "year", "2025-01-01T00:00:00+08:00"),
        ("2026-06-10T01:00:00+08:00", "day", "2026-06-10T00:00:00+08:00"),
        # Weeks start on Monday: 2026-06-14 is a Sunday, 2026-06-15 a Monday.
        ("2026-06-14T23:00:00+08:00", "week", "2026-06-08T00:00:00+08:00"),
        ("2026-06-15T00:10:00+08:00", "week", "2026-06-15T00:00:00+08:00"),
    ],
)
def test_period_starts_at_local_midnight_of_the_programme_time_zone(
    now: str, period: str, expected: str
) -> None:
    assert period_start(period, at(now), SHANGHAI) == at(expected)


def test_month_period_differs_from_utc_in_the_first_eight_hours_of_the_month() -> None:
    early_on_the_first = at("2026-03-01T05:00:00+08:00")
    assert period_start("month", early_on_the_first, SHANGHAI) != period_start(
        "month", early_on_the_first, ZoneInfo("UTC")
    )


def test_ever_is_one_period_whatever_the_time() -> None:
    assert period_start("ever", at("2030-05-05T05:05:05+08:00"), SHANGHAI) == EVER


def test_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="fortnight"):
        period_start("fortnight", at("2026-01-01T00:00:00+00:00"), SHANGHAI)


def test_local_day_boundaries() -> None:
    assert local_midnight(date(2026, 1, 2), SHANGHAI) == datetime(2026, 1, 1, 16, tzinfo=UTC)
    assert end_of_local_day(date(2026, 1, 1), SHANGHAI) == datetime(2026, 1, 1, 16, tzinfo=UTC)
    assert local_date(datetime(2026, 1, 1, 16, tzinfo=UTC), SHANGHAI) == date(2026, 1, 2)
    assert local_date(datetime(2026, 1, 1, 15, 59, tzinfo=UTC), SHANGHAI) == date(2026, 1, 1)


def test_card_is_valid_through_the_whole_local_day_of_valid_until() -> None:
    valid_until = date(2026, 12, 31)
    assert card_is_valid(valid_until, at("2026-12-31T23:59:59+08:00"), SHANGHAI)
    assert not card_is_valid(valid_until, at("2027-01-01T00:00:00+08:00"), SHANGHAI)
    # 16:30 UTC on the 31st is already 1 January in Shanghai.
    assert not card_is_valid(valid_until, datetime(2026, 12, 31, 16, 30, tzinfo=UTC), SHANGHAI)


def test_date_bounds_cover_whole_local_days() -> None:
    assert parse_bound("2026-01-01", SHANGHAI, end=False) == at("2026-01-01T00:00:00+08:00")
    assert parse_bound("2026-01-31", SHANGHAI, end=True) == at("2026-02-01T00:00:00+08:00")
    assert parse_bound("2026-01-31T10:00:00+08:00", SHANGHAI, end=True) == at(
        "2026-01-31T10:00:00+08:00"
    )


def test_instant_bound_without_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        parse_bound("2026-01-31T10:00:00", SHANGHAI, end=False)
