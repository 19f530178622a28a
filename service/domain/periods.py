"""Calendar periods in the programme's time zone (holder limits, voucher expiry, card
validity). Instants are aware datetimes; calendars are local."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.domain.language import Said

PERIODS = ("day", "week", "month", "year", "ever")

#: The single "period" of a limit that never resets.
EVER = datetime(1970, 1, 1, tzinfo=UTC)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant a local calendar day starts, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_date(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def period_start(period: str, at: datetime, tz: ZoneInfo) -> datetime:
    """The start of the holder-limit period containing `at` (weeks start on Monday)."""
    if period == "ever":
        return EVER
    day = local_date(at, tz)
    if period == "day":
        start = day
    elif period == "week":
        start = day - timedelta(days=day.weekday())
    elif period == "month":
        start = day.replace(day=1)
    elif period == "year":
        start = day.replace(month=1, day=1)
    else:
        raise ValueError(f"unknown period {period!r}")
    return local_midnight(start, tz)


def period_starts(at: datetime, tz: ZoneInfo) -> dict[str, datetime]:
    """The start of every period containing `at`, by period name."""
    return {period: period_start(period, at, tz) for period in PERIODS}


def end_of_local_day(day: date, tz: ZoneInfo) -> datetime:
    """The (exclusive) end of a local calendar day: the next local midnight."""
    return local_midnight(day + timedelta(days=1), tz)


def card_is_valid(valid_until: date, at: datetime, tz: ZoneInfo) -> bool:
    """A card is valid through the whole local day of `valid_until`."""
    return local_date(at, tz) <= valid_until


#: The instants a `from`/`to` filter may name: any real record lies well inside.
#: (A day of margin each side: 1900-01-01 starts before 1900 in UTC east of Greenwich.)
BOUND_RANGE = (datetime(1899, 12, 31, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC))


def parse_bound(value: str, tz: ZoneInfo, *, end: bool) -> datetime:
    """A `from`/`to` filter: an RFC 3339 instant, or a local calendar date (a `to` date
    includes its whole day). Raises ValueError with a message for the caller, also for
    a time outside what PostgreSQL and Python both hold (years 1900 to 9998)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            instant = end_of_local_day(day, tz) if end else local_midnight(day, tz)
        else:
            instant = datetime.fromisoformat(value)
            if instant.tzinfo is None:
                raise ValueError(
                    Said(
                        "needs a time zone offset, e.g. 2026-01-01T00:00:00+08:00",
                        "须带时区偏移，例如 2026-01-01T00:00:00+08:00",
                    )
                )
            instant = instant.astimezone(UTC)
    except OverflowError:
        instant = None
    if instant is None or not BOUND_RANGE[0] <= instant <= BOUND_RANGE[1]:
        raise ValueError(
            Said(
                "must be between 1900-01-01 and 9998-12-31", "必须在 1900-01-01 到 9998-12-31 之间"
            )
        )
    return instant
