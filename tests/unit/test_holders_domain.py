"""Holder rules without a database: field formats, status life cycle, CSV reading, PINs."""

from __future__ import annotations

from datetime import date

import pytest

from service.domain import pins
from service.domain.errors import ApiError
from service.domain.holders import (
    HolderRow,
    check_card_number,
    check_display_name,
    check_holders_csv,
    check_pin,
    check_region,
    check_transition,
    check_valid_until,
    iter_holder_rows,
)

HEADER = "card_number,category,display_name,region,valid_until,pin"


def csv_bytes(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def parse_holders_csv(data: bytes) -> tuple[list[HolderRow], list]:
    """(rows, []) for a good file, ([], errors) for a bad one, as the import sees them."""
    check = check_holders_csv(data)
    if check.error_count:
        return [], list(check.errors)
    rows = list(iter_holder_rows(data))
    assert len(rows) == check.rows
    return rows, []


def errors_of(data: bytes) -> list[tuple[int | None, str]]:
    return [(error.line, error.field) for error in parse_holders_csv(data)[1]]


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("active", "suspended"),
        ("suspended", "active"),
        ("active", "revoked"),
        ("suspended", "revoked"),
        ("active", "active"),
        ("revoked", "revoked"),
    ],
)
def test_allowed_status_changes_pass(current: str, wanted: str) -> None:
    check_transition(current, wanted)


@pytest.mark.parametrize("wanted", ["active", "suspended"])
def test_nothing_comes_back_from_revoked(wanted: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_transition("revoked", wanted)
    assert caught.value.code == "conflict"


@pytest.mark.parametrize("value", ["YD-1", "abcd", "0123456789" * 3 + "AB", "----"])
def test_card_numbers_of_letters_digits_and_dashes_are_accepted(value: str) -> None:
    assert check_card_number(value) == value.upper()


@pytest.mark.parametrize(
    "value", ["YD1", "0123456789" * 3 + "ABC", "YD 001", "YD_001", "证件0001", "YD-001\x00", ""]
)
def test_malformed_card_numbers_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        check_card_number(value)


@pytest.mark.parametrize("value", ["123456", "012345678901"])
def test_new_pins_of_six_to_twelve_digits_are_accepted(value: str) -> None:
    assert check_pin(value) == value


@pytest.mark.parametrize(
    "value", ["123", "1234", "12345", "0123456789012", "12a456", "１２３４５６", ""]
)
def test_other_pins_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        check_pin(value)


@pytest.mark.parametrize("value", ["", "   ", "x" * 101, "王\x00建国", "王\u0007国", "\ud800"])
def test_bad_display_names_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        check_display_name(value)


def test_region_may_be_empty_but_not_longer_than_100() -> None:
    assert check_region("") == ""
    assert check_region("东" * 100) == "东" * 100
    with pytest.raises(ValueError):
        check_region("东" * 101)


@pytest.mark.parametrize("value", ["2030/12/31", "20301231", "31.12.2030", "soon"])
def test_valid_until_must_be_written_yyyy_mm_dd(value: str) -> None:
    with pytest.raises(ValueError, match="must be a date written YYYY-MM-DD"):
        check_valid_until(value)


@pytest.mark.parametrize("value", ["2030-02-30", "2031-02-29", "2030-13-01", "2030-04-31"])
def test_a_day_that_does_not_exist_is_named_not_a_real_date(value: str) -> None:
    """Written as asked, so asking for YYYY-MM-DD again would not help."""
    with pytest.raises(ValueError, match=f"^{value} is not a real date$"):
        check_valid_until(value)


def test_a_good_file_gives_checked_rows() -> None:
    rows, errors = parse_holders_csv(
        csv_bytes(
            "yd-0001,veteran, 王建国 ,东城街道,2030-12-31,204816",
            "YD-0002,other,李,,2031-01-01,000007",
        )
    )
    assert errors == []
    assert rows == [
        HolderRow(2, "YD-0001", "veteran", "王建国", "东城街道", date(2030, 12, 31), "204816"),
        HolderRow(3, "YD-0002", "other", "李", "", date(2031, 1, 1), "000007"),
    ]


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + csv_bytes("YD-0001,veteran,王建国,,2030-12-31,123456").replace(
        b"\n", b"\r\n"
    )
    rows, errors = parse_holders_csv(data)
    assert errors == []
    assert [row.card_number for row in rows] == ["YD-0001"]


def test_columns_may_come_in_any_order() -> None:
    rows, errors = parse_holders_csv(
        csv_bytes(
            "123456,2030-12-31,王建国,YD-0001,,veteran",
            header="pin,valid_until,display_name,card_number,region,category",
        )
    )
    assert errors == []
    assert rows[0].card_number == "YD-0001" and rows[0].pin == "123456"


def test_unknown_and_missing_columns_are_errors_on_line_1() -> None:
    data = csv_bytes(
        "YD-0001,veteran,王建国,,2030-12-31,x",
        header="card_number,category,name,region,valid_until,pin,pin",
    )
    assert errors_of(data) == [(1, "name"), (1, "pin"), (1, "display_name")]


def test_every_bad_line_is_reported_with_the_line_a_spreadsheet_shows() -> None:
    data = csv_bytes(
        "YD-0001,veteran,王建国,,2030-12-31,123456",
        "YD-0002,general,李,,2030-12-31,123456",  # line 3: category
        "",  # line 4: blank, skipped
        'YD-0003,veteran,"张\n三",,2030-12-31,123456',  # line 5 (two text lines): name
        "YD-0004,veteran,赵,,2030-13-01,12",  # line 6: date and PIN
        "YD-0005,veteran,钱",  # line 7: too few values
        "yd-0001,veteran,孙,,2030-12-31,123456",  # line 8: same card as line 2
    )
    assert errors_of(data) == [
        (3, "category"),
        (5, "display_name"),
        (6, "valid_until"),
        (6, "pin"),
        (7, "row"),
        (8, "card_number"),
    ]
    _, errors = parse_holders_csv(data)
    assert "line 2" in errors[-1].message


def test_a_file_that_is_not_utf8_names_the_line() -> None:
    data = csv_bytes("YD-0001,veteran,王建国,,2030-12-31,123456").replace(
        "王建国".encode(), "王建国".encode("gbk")
    )
    assert errors_of(data) == [(2, "file")]


def test_an_empty_file_has_no_header() -> None:
    assert errors_of(b"") == [(1, "file")]
    assert errors_of(b"\xef\xbb\xbf") == [(1, "file")]


def test_a_header_alone_is_an_empty_import() -> None:
    assert parse_holders_csv(csv_bytes()) == ([], [])


def test_broken_quoting_is_an_error_on_its_line() -> None:
    data = csv_bytes(
        "YD-0001,veteran,王建国,,2030-12-31,123456", 'YD-0002,veteran,"李"x,,2030-12-31,123456'
    )
    assert errors_of(data) == [(3, "file")]


def test_pin_hash_is_argon2id_with_the_stated_parameters() -> None:
    stored = pins.hash_pin("204816")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "204816" not in stored
    assert pins.verify_pin(stored, "204816")
    assert not pins.verify_pin(stored, "204817")
    assert not pins.needs_rehash(stored)


def test_a_malformed_hash_never_verifies_and_needs_rehash() -> None:
    assert not pins.verify_pin("not a hash", "204816")
    assert pins.needs_rehash("$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")


def test_a_file_with_many_bad_lines_lists_the_first_1000_and_counts_them_all() -> None:
    data = csv_bytes(*(f"YD-{n:04d},army,李,,2030-12-31,123456" for n in range(1500)))
    check = check_holders_csv(data)
    assert (check.rows, check.error_count, len(check.errors)) == (0, 1500, 1000)
    assert [error.line for error in check.errors[:2]] == [2, 3]
    assert check.errors[-1].line == 1001


def test_a_good_file_is_counted_without_keeping_its_rows() -> None:
    data = csv_bytes(*(f"YD-{n:04d},veteran,李,,2030-12-31,123456" for n in range(1, 301)))
    assert check_holders_csv(data) == check_holders_csv(data, max_listed=0)
    assert check_holders_csv(data).rows == 300
    assert [row.line for row in iter_holder_rows(data)] == list(range(2, 302))


def test_the_rows_of_a_bad_file_cannot_be_read_as_good() -> None:
    with pytest.raises(ValueError, match="line 3: row"):
        list(iter_holder_rows(csv_bytes("YD-0001,veteran,李,,2030-12-31,123456", "YD-2,army")))
