"""Voucher codes, API keys, ids, cursors and problems: the small pure rules behind
scanning, authenticating and listing. No database."""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from service.api.problems import STATUS, problem_body, status_of
from service.domain import codes, ids, keys, pagination
from service.domain.errors import CODES, PROBLEM_TYPE_BASE, ApiError, FieldError, field_errors

# --- voucher codes (docs/product.md) -----------------------------------------------------------


def test_new_codes_are_eighteen_digits_and_differ() -> None:
    drawn = {codes.new_code() for _ in range(50)}
    assert len(drawn) == 50
    assert all(len(code) == 18 and code.isdigit() for code in drawn)


def test_a_small_random_number_keeps_its_leading_zeros(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codes.secrets, "randbelow", lambda bound: 42 if bound == 10**18 else -1)
    assert codes.new_code() == "000000000000000042"


def test_the_database_keeps_the_sha256_of_a_code() -> None:
    assert codes.digest("012345678901234567") == hashlib.sha256(b"012345678901234567").digest()


def test_a_code_typed_in_groups_is_normalised() -> None:
    assert codes.normalise(" 0123 4567\t8901 234567\n") == "012345678901234567"


@pytest.mark.parametrize(
    ("text", "is_code"),
    [
        ("012345678901234567", True),
        ("01234567890123456", False),
        ("0123456789012345678", False),
        ("01234567890123456x", False),
        ("０１２３４５６７８９０１２３４５６７", False),  # fullwidth digits are digits, not ASCII
    ],
)
def test_only_eighteen_ascii_digits_are_a_code(text: str, is_code: bool) -> None:
    assert codes.is_code(text) is is_code


def test_the_miss_counter_counts_in_calendar_minutes() -> None:
    now = datetime(2025, 5, 1, 9, 41, 37, 123456, tzinfo=UTC)
    assert codes.minute_of(now) == datetime(2025, 5, 1, 9, 41, tzinfo=UTC)


@pytest.mark.parametrize(
    ("second", "micro", "retry_after"),
    [(0, 0, "61"), (37, 500000, "23"), (59, 999999, "1"), (59, 0, "2")],
)
def test_too_many_misses_says_when_the_minute_ends(
    second: int, micro: int, retry_after: str
) -> None:
    refusal = codes.too_many_misses(datetime(2025, 5, 1, 9, 41, second, micro, tzinfo=UTC))
    assert refusal.code == "too_many_attempts"
    assert status_of(refusal) == 429
    assert refusal.headers == {"Retry-After": retry_after}
    assert str(codes.MISS_LIMIT) in refusal.detail


def test_a_code_is_judged_by_its_tokens_times_and_the_ttl_in_force() -> None:
    issued = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    expires = issued + timedelta(seconds=600)
    alive = issued + timedelta(seconds=10)
    assert codes.judge_times(issued, expires, alive, max_lifetime=600) is None
    shorter = codes.judge_times(issued, expires, alive, max_lifetime=300)
    assert shorter is not None and shorter.code == "token_invalid"
    late = codes.judge_times(issued, expires, expires + timedelta(seconds=6), max_lifetime=600)
    assert late is not None and late.code == "token_expired"
    assert codes.judge_times(issued, expires, expires + timedelta(seconds=4), 600) is None


def test_a_partners_keys_are_blocked_together_at_the_partner_limit() -> None:
    assert codes.MISS_LIMIT < codes.PARTNER_MISS_LIMIT
    assert not codes.is_blocked(codes.MISS_LIMIT - 1, codes.PARTNER_MISS_LIMIT - 1)
    assert codes.is_blocked(0, codes.PARTNER_MISS_LIMIT)
    assert codes.is_blocked(codes.MISS_LIMIT, 0)
    by_partner = codes.too_many_misses(datetime(2025, 5, 1, tzinfo=UTC), by_partner=True)
    assert str(codes.PARTNER_MISS_LIMIT) in by_partner.detail


# --- API keys and session tokens ---------------------------------------------------------


def test_a_new_key_is_the_prefix_and_43_url_safe_characters() -> None:
    key = keys.generate_key()
    assert re.fullmatch(r"yd_[A-Za-z0-9_-]{43}", key)
    assert keys.looks_like_key(key)
    assert key != keys.generate_key()


def test_a_session_token_has_its_own_prefix() -> None:
    token = keys.generate_session_token()
    assert re.fullmatch(r"yds_[A-Za-z0-9_-]{43}", token)
    assert token != keys.generate_session_token()


def test_only_the_sha256_of_a_key_is_kept() -> None:
    assert keys.hash_key("yd_abc") == hashlib.sha256(b"yd_abc").digest()


@pytest.mark.parametrize(
    ("secret", "looks"),
    [
        ("yd_" + "a" * 17, True),  # 20 characters
        ("yd_" + "a" * 16, False),
        ("yd_" + "a" * 97, True),  # 100
        ("yd_" + "a" * 98, False),
        ("xx_" + "a" * 43, False),
    ],
)
def test_a_key_is_recognised_by_prefix_and_length(secret: str, looks: bool) -> None:
    assert keys.looks_like_key(secret) is looks


# --- ids ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_last_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process would: no id made yet."""
    monkeypatch.setattr(ids, "_last", [0, 0])


def test_an_id_is_its_kinds_prefix_and_sixteen_crockford_characters() -> None:
    for kind, prefix in ids.PREFIXES.items():
        made = ids.new_id(kind)
        assert re.fullmatch(prefix + r"_[0-9A-HJKMNP-TV-Z]{16}", made), made


def test_ids_encode_the_millisecond_first_so_they_sort_by_time() -> None:
    earlier = ids.time_ordered_id(now_ms=1_700_000_000_000)
    later = ids.time_ordered_id(now_ms=1_700_000_000_001)
    much_later = ids.time_ordered_id(now_ms=1_800_000_000_000)
    assert earlier < later < much_later
    # The first 9 characters (45 bits) hold the 44 bits of milliseconds.
    assert int_of(earlier) >> 36 == 1_700_000_000_000
    assert int_of(much_later) >> 36 == 1_800_000_000_000


def test_ids_within_one_millisecond_count_up_and_never_repeat() -> None:
    made = [ids.time_ordered_id(now_ms=1_750_000_000_000) for _ in range(100)]
    assert made == sorted(made)
    assert len(set(made)) == 100
    values = [int_of(m) for m in made]
    assert all(b - a == 1 for a, b in itertools.pairwise(values))
    # A clock that steps back keeps counting after the last id, still in order.
    assert ids.time_ordered_id(now_ms=1_749_999_999_000) > made[-1]


def test_a_fresh_millisecond_leaves_room_to_count_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids.secrets, "randbits", lambda bits: (1 << bits) - 1)
    first = int_of(ids.time_ordered_id(now_ms=1_760_000_000_000))
    assert first & ((1 << 36) - 1) == (1 << 35) - 1
    assert int_of(ids.time_ordered_id(now_ms=1_760_000_000_000)) == first + 1


def test_when_the_random_part_is_full_the_next_id_draws_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids, "_last", [1_770_000_000_000, (1 << 36) - 1])
    monkeypatch.setattr(ids.secrets, "randbits", lambda bits: 7)
    assert int_of(ids.time_ordered_id(now_ms=1_770_000_000_000)) == (1_770_000_000_000 << 36) | 7


def test_the_clock_gives_the_milliseconds_when_none_are_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids.time, "time", lambda: 1_780_000_000.5)
    assert int_of(ids.time_ordered_id()) >> 36 == 1_780_000_000_500


def int_of(made: str) -> int:
    return sum(ids._CROCKFORD.index(c) << (5 * i) for i, c in enumerate(reversed(made)))


# --- cursors and pages --------------------------------------------------------------------


def test_a_cursor_round_trips_to_its_id_and_carries_no_padding() -> None:
    for last_id in ("ofr_01J0000000000000", "a", "ab", "abc"):
        cursor = pagination.encode_cursor(last_id)
        assert "=" not in cursor
        assert pagination.decode_cursor(cursor) == last_id


def test_a_made_up_cursor_is_still_a_position() -> None:
    assert pagination.decode_cursor("_-8") == "\ufffd\ufffd"  # invalid UTF-8 replaced
    assert pagination.decode_cursor("AA") == ""  # a NUL byte dropped


@pytest.mark.parametrize("cursor", ["a", "ü", "a=b"])
def test_text_that_is_no_base64url_is_not_a_cursor(cursor: str) -> None:
    with pytest.raises(ApiError) as refused:
        pagination.decode_cursor(cursor)
    assert refused.value.code == "validation_error"
    assert [e.field for e in refused.value.errors] == ["cursor"]


def test_a_page_with_an_extra_row_has_a_cursor_after_its_last_item() -> None:
    rows = [SimpleNamespace(id=f"ofr_{n}") for n in range(4)]
    page = pagination.page_of(rows, pagination.PageRequest(limit=3))
    assert page.items == rows[:3]
    assert page.next_cursor == pagination.encode_cursor("ofr_2")


def test_the_last_page_has_no_cursor() -> None:
    rows = [{"id": f"ofr_{n}"} for n in range(3)]
    page = pagination.page_of(rows, pagination.PageRequest(limit=3))
    assert page.items == rows
    assert page.next_cursor is None
    assert pagination.page_of([], pagination.PageRequest(limit=3)).next_cursor is None


def test_mapping_rows_are_paged_by_their_id_key() -> None:
    rows = [{"id": "a"}, {"id": "b"}]
    assert pagination.page_of(rows, pagination.PageRequest(limit=1)).next_cursor == (
        pagination.encode_cursor("a")
    )


def test_a_page_request_defaults_to_fifty_from_the_start() -> None:
    assert pagination.PageRequest() == pagination.PageRequest(limit=50, after_id=None)


# --- problems (RFC 9457) ----------------------------------------------------------------


def test_a_problem_carries_type_title_status_detail_and_code() -> None:
    error = ApiError("offer_inactive", "The offer has ended", extra={"offer_id": "ofr_1"})
    assert problem_body(error) == {
        "type": PROBLEM_TYPE_BASE + "offer_inactive",
        "title": CODES["offer_inactive"],
        "status": 409,
        "detail": "The offer has ended",
        "code": "offer_inactive",
        "offer_id": "ofr_1",
    }


def test_a_problem_without_detail_repeats_its_title() -> None:
    error = ApiError("not_found")
    assert error.detail == "Not found"
    assert "errors" not in error.problem()


def test_field_errors_are_listed_with_their_line_when_known() -> None:
    error = field_errors([FieldError("pin", "too short", line=3), FieldError("name", "missing")])
    assert error.problem()["errors"] == [
        {"line": 3, "field": "pin", "message": "too short"},
        {"field": "name", "message": "missing"},
    ]
    assert list(error.problem()["errors"][0]) == ["line", "field", "message"]
    assert error.detail == "pin: too short; name: missing"


def test_every_problem_code_has_one_http_status_in_the_api() -> None:
    assert STATUS.keys() == CODES.keys()
    assert "status" not in ApiError("not_found").problem()  # the domain says no HTTP


def test_an_unknown_problem_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown problem code"):
        ApiError("no_such_code")
