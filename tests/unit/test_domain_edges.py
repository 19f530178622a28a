"""Edges of domain rules the mutation run (bench/mutation.py) found untested: the month
after December, the outermost dates a filter accepts, the first redemption freezing an
offer, and who the client is behind proxies."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta
from ipaddress import ip_network
from zoneinfo import ZoneInfo

import pytest

from service.domain.errors import ApiError
from service.domain.holders import normalise_card_number
from service.domain.offers import plan_update
from service.domain.periods import parse_bound
from service.domain.redemptions import judge
from service.domain.reports import Period, parse_date, period_of
from service.domain.staff import (
    SESSION_PREFIX,
    check_password,
    csrf_matches,
    csrf_token_for,
    generate_secret,
    hash_secret,
    normalise_email,
)
from service.domain.throttle import ADDRESS_WINDOW, resolve_client, retry_after_seconds
from service.domain.vouchers import voucher_expiry
from tests.unit.test_offers_domain import stored
from tests.unit.test_redemptions_domain import facts

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_period_over_new_year_reads_january_as_a_whole_month() -> None:
    split = Period(date(2025, 12, 15), date(2026, 2, 10)).split()
    assert split.head == (date(2025, 12, 15), date(2026, 1, 1))
    assert split.months == (date(2026, 1, 1), date(2026, 2, 1))
    assert split.tail == (date(2026, 2, 1), date(2026, 2, 11))


def test_a_period_of_whole_months_ending_in_december_has_no_days_around_them() -> None:
    split = Period(date(2025, 11, 1), date(2025, 12, 31)).split()
    assert split.months == (date(2025, 11, 1), date(2026, 1, 1))
    assert split.head[0] == split.head[1] and split.tail[0] == split.tail[1]


def test_a_period_inside_december_is_read_day_by_day() -> None:
    split = Period(date(2025, 12, 2), date(2025, 12, 30)).split()
    assert split.head == (date(2025, 12, 2), date(2025, 12, 31))
    assert split.months[0] == split.months[1]


@pytest.mark.parametrize(
    ("value", "end"),
    [
        ("1900-01-01", False),
        ("9998-12-31", True),
        ("1899-12-31T00:00:00+00:00", False),  # the lowest instant held
        ("9999-12-31T00:00:00+00:00", True),  # the highest
    ],
)
def test_the_outermost_bounds_are_accepted(value: str, end: bool) -> None:
    assert parse_bound(value, SHANGHAI, end=end).tzinfo is not None


@pytest.mark.parametrize(
    ("value", "end"),
    [
        ("1899-12-30", False),
        ("9999-12-31", True),
        ("1899-12-30T23:59:59+00:00", False),
        ("9999-12-31T00:00:01+00:00", True),
        ("0001-01-01", False),
        ("2026-01-01T00:00:00", False),  # no offset
    ],
)
def test_bounds_past_the_outermost_are_refused(value: str, end: bool) -> None:
    with pytest.raises(ValueError):
        parse_bound(value, SHANGHAI, end=end)


def test_a_to_date_includes_its_whole_local_day() -> None:
    assert parse_bound("2026-03-01", SHANGHAI, end=False) == datetime(2026, 2, 28, 16, tzinfo=UTC)
    end = parse_bound("2026-03-01", SHANGHAI, end=True)
    assert (
        datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC) < end <= datetime(2026, 3, 1, 16, tzinfo=UTC)
    )


def test_the_first_redemption_freezes_the_pricing() -> None:
    assert plan_update(stored(redeemed_count=0), {"percent_bp": 2000}) == {
        "percent_bp": [1000, 2000]
    }
    with pytest.raises(ApiError) as refused:
        plan_update(stored(redeemed_count=1), {"percent_bp": 2000})
    assert refused.value.code == "conflict"


TRUSTED = [ip_network("10.0.0.0/8"), ip_network("::1/128")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # an untrusted peer: its own address
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["192.0.2.9, 198.51.100.1, 10.0.0.3"], "198.51.100.1"),
        ("10.0.0.2", ["192.0.2.9", "198.51.100.1"], "198.51.100.1"),  # two headers, one list
        ("10.0.0.2", ["198.51.100.1:4711"], "198.51.100.1"),  # v4 with a port
        ("10.0.0.2", ["[2001:db8::7]:443"], "2001:db8::7"),  # v6 with a port
        ("10.0.0.2", ["198.51.100.1, nonsense"], "10.0.0.2"),  # a hop that is not an address
        ("10.0.0.2", ["10.0.0.4, 10.0.0.3"], "10.0.0.4"),  # proxies all the way
        ("10.0.0.2", [], "10.0.0.2"),
        ("::1", [" 198.51.100.1 "], "198.51.100.1"),
        (None, ["198.51.100.1"], "unknown"),
        ("not an address", [], "not an address"),
    ],
)
def test_the_client_is_the_last_hop_no_trusted_proxy_wrote(
    peer: str | None, forwarded: list[str], client: str
) -> None:
    assert resolve_client(peer, forwarded, TRUSTED) == client


def test_retry_after_counts_whole_seconds_up_to_the_end_of_the_window() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert retry_after_seconds(start, start) == ADDRESS_WINDOW.total_seconds()
    assert retry_after_seconds(start, start + ADDRESS_WINDOW - timedelta(seconds=1.5)) == 2
    assert retry_after_seconds(start, start + ADDRESS_WINDOW - timedelta(seconds=0.5)) == 1
    assert retry_after_seconds(start, start + ADDRESS_WINDOW + timedelta(hours=1)) == 1


def test_a_period_whose_only_month_is_cut_short_is_read_day_by_day() -> None:
    # From 2 December to 30 January: no calendar month lies wholly inside.
    split = Period(date(2025, 12, 2), date(2026, 1, 30)).split()
    assert split.head == (date(2025, 12, 2), date(2026, 1, 31))
    assert split.months[0] == split.months[1] == split.tail[0] == split.tail[1]


@pytest.mark.parametrize("password", ["Kq7#vR2!mZp9", "bluebirdsing7", "Kq7#vR2!mZp9" + "x" * 188])
def test_the_shortest_weakest_and_longest_passwords_allowed_are_accepted(password: str) -> None:
    # 12 characters, zxcvbn score exactly 3, 200 characters (zxcvbn alone takes 72).
    check_password(password)


@pytest.mark.parametrize(
    ("password", "hints"),
    [
        ("Kq7#vR2!mZp", {}),  # 11 characters
        ("Kq7#vR2!mZp9" + "x" * 189, {}),  # 201
        ("x" * 72 + "Kq7#vR2!mZp9", {}),  # judged by its first 72 characters: all x
        ("sunnymonday12", {}),  # score 2
        ("qiuyuehuang2026", {"display_name": "qiuyuehuang"}),  # strong, but the person's name
    ],
)
def test_a_password_too_short_too_long_too_weak_or_of_the_name_is_refused_as_password(
    password: str, hints: dict[str, str]
) -> None:
    with pytest.raises(ApiError) as refused:
        check_password(password, **hints)
    assert [error.field for error in refused.value.errors] == ["password"]


def test_a_voucher_lasts_from_the_local_day_it_was_claimed_on() -> None:
    # 23:30 UTC on 1 March is already 2 March in Shanghai: 30 days count from the 2nd.
    claimed = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    expiry = voucher_expiry(claimed, 30, None, SHANGHAI)
    # It ends at the local midnight closing 1 April.
    assert expiry == datetime(2026, 4, 2, tzinfo=SHANGHAI)


# The programme's calendar, not the server's: at 01:00 in Shanghai the UTC date is still
# the day before (this machine, like most servers, runs in UTC).
AFTER_LOCAL_MIDNIGHT = datetime(2026, 6, 30, 17, tzinfo=UTC)  # 1 July, 01:00 in Shanghai
LATER = datetime(2026, 7, 10, tzinfo=UTC)


def test_at_the_till_a_card_valid_until_yesterday_local_is_refused_though_utc_says_today() -> None:
    card_ended = facts(card_valid_until=date(2026, 6, 30), voucher_expires_at=LATER)
    with pytest.raises(ApiError) as refused:
        judge(card_ended, 10_000, 0, AFTER_LOCAL_MIDNIGHT, SHANGHAI)
    assert refused.value.code == "holder_inactive"


def test_the_holder_limit_counts_in_the_local_month() -> None:
    monthly = facts(holder_limit_count=1, holder_limit_period="month", voucher_expires_at=LATER)
    grant = judge(monthly, 10_000, 0, AFTER_LOCAL_MIDNIGHT, SHANGHAI)
    assert grant.holder_period_start == datetime(2026, 7, 1, tzinfo=SHANGHAI)


def test_staff_secrets_are_prefixed_random_and_stored_as_their_sha256() -> None:
    first, second = generate_secret(SESSION_PREFIX), generate_secret(SESSION_PREFIX)
    assert first.startswith(SESSION_PREFIX) and first != second
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first.removeprefix(SESSION_PREFIX))  # 256 bits
    assert hash_secret(first) == hashlib.sha256(first.encode()).digest()


def test_a_csrf_token_is_unpadded_base64url_of_its_sessions_hmac() -> None:
    token = csrf_token_for("yss_secret")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert csrf_matches("yss_secret", token) and not csrf_matches("yss_other", token)
    assert not csrf_matches("yss_secret", None) and not csrf_matches("yss_secret", "é" + token)


def test_emails_compare_in_lower_case_without_spaces() -> None:
    assert normalise_email("  Zhang.Wei@Bureau.Example ") == "zhang.wei@bureau.example"


def field_of(refused: pytest.ExceptionInfo[ApiError]) -> list[str]:
    return [error.field for error in refused.value.errors]


@pytest.mark.parametrize("name", ["from", "to"])
@pytest.mark.parametrize("value", ["2026-1-01", "2026-02-30", "yesterday"])
def test_a_report_date_that_is_not_a_calendar_date_names_its_parameter(name, value) -> None:
    with pytest.raises(ApiError) as refused:
        parse_date(value, name)
    assert field_of(refused) == [name]


def test_report_periods_reach_exactly_from_2000_to_2999() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert period_of(date(2000, 1, 1), date(2999, 12, 31), now, SHANGHAI) == Period(
        date(2000, 1, 1), date(2999, 12, 31)
    )
    with pytest.raises(ApiError) as refused:
        period_of(date(1999, 12, 31), date(2026, 1, 1), now, SHANGHAI)
    assert field_of(refused) == ["from"]
    with pytest.raises(ApiError) as refused:
        period_of(date(2026, 1, 1), date(3000, 1, 1), now, SHANGHAI)
    assert field_of(refused) == ["to"]


def test_card_numbers_are_compared_in_upper_case_without_spaces() -> None:
    assert normalise_card_number("  yd-2026-0001 ") == "YD-2026-0001"
