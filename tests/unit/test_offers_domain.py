"""Offer rules without a database: kinds, window, life cycle, edits once redeemed."""

from datetime import UTC, datetime, timedelta

import pytest

from service.domain.errors import ApiError
from service.domain.offers import (
    EDITABLE,
    apply_changes,
    check_new_offer,
    check_partner_accepts_offers,
    check_transition,
    plan_update,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 12, 31, 16, tzinfo=UTC)

KIND_REQUIRED = {
    "percent_off": ("percent_bp", 1000),
    "amount_off": ("amount_off", 500),
    "fixed_price": ("fixed_price", 990),
    "service": ("nominal_value", 2000),
}


def stored(**fields) -> dict:
    """An offer as its row reads: percent_off 10 % by default, never redeemed."""
    offer = dict.fromkeys(EDITABLE)
    offer.update(
        title="邮政寄递九折",
        description="",
        kind="percent_off",
        percent_bp=1000,
        eligible_categories=[],
        uses_per_voucher=1,
        status="active",
        redeemed_count=0,
        spent=0,
    )
    offer.update(fields)
    return offer


def redeemed(**fields) -> dict:
    defaults = {
        "redeemed_count": 3,
        "spent": 1500,
        "starts_at": START,
        "ends_at": END,
        "total_redemptions": 10,
        "budget": 5000,
        "uses_per_voucher": 2,
        "holder_limit_count": 2,
        "holder_limit_period": "month",
        "max_discount": 800,
    }
    return stored(**{**defaults, **fields})


def fields_of(error: ApiError) -> list[str]:
    return [entry.field for entry in error.errors]


@pytest.mark.parametrize("kind", list(KIND_REQUIRED))
def test_each_kind_with_its_field_is_accepted(kind: str) -> None:
    name, value = KIND_REQUIRED[kind]
    check_new_offer({"kind": kind, name: value})


@pytest.mark.parametrize("kind", list(KIND_REQUIRED))
def test_each_kind_without_its_field_names_the_missing_field(kind: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_new_offer({"kind": kind})
    assert caught.value.code == "validation_error"
    assert fields_of(caught.value) == [KIND_REQUIRED[kind][0]]


@pytest.mark.parametrize(
    ("kind", "foreign"),
    [
        ("percent_off", "amount_off"),
        ("amount_off", "max_discount"),
        ("amount_off", "percent_bp"),
        ("fixed_price", "nominal_value"),
        ("service", "fixed_price"),
    ],
)
def test_a_field_of_another_kind_is_refused_by_name(kind: str, foreign: str) -> None:
    name, value = KIND_REQUIRED[kind]
    with pytest.raises(ApiError) as caught:
        check_new_offer({"kind": kind, name: value, foreign: 100})
    assert caught.value.code == "validation_error"
    assert fields_of(caught.value) == [foreign]
    assert foreign in caught.value.detail


def test_percent_off_may_carry_a_cap() -> None:
    check_new_offer({"kind": "percent_off", "percent_bp": 1500, "max_discount": 5000})


@pytest.mark.parametrize("ends_at", [START, START - timedelta(seconds=1)])
def test_a_window_that_does_not_end_after_it_starts_is_refused(ends_at: datetime) -> None:
    with pytest.raises(ApiError) as caught:
        check_new_offer(
            {"kind": "amount_off", "amount_off": 1, "starts_at": START, "ends_at": ends_at}
        )
    assert fields_of(caught.value) == ["ends_at"]


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("draft", "active"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "ended"),
        ("paused", "ended"),
        ("ended", "ended"),
    ],
)
def test_allowed_status_moves(current: str, wanted: str) -> None:
    check_transition(current, wanted)


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("draft", "paused"),
        ("draft", "ended"),
        ("active", "draft"),
        ("paused", "draft"),
        ("ended", "active"),
        ("ended", "paused"),
        ("ended", "draft"),
    ],
)
def test_other_status_moves_are_conflicts(current: str, wanted: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_transition(current, wanted)
    assert caught.value.code == "conflict"


def test_a_terminated_partner_accepts_no_offers() -> None:
    check_partner_accepts_offers("suspended")
    with pytest.raises(ApiError) as caught:
        check_partner_accepts_offers("terminated")
    assert caught.value.code == "conflict"


def test_switching_kind_clears_the_old_kinds_fields() -> None:
    offer = apply_changes(stored(max_discount=800), {"kind": "amount_off", "amount_off": 500})
    assert offer["percent_bp"] is None
    assert offer["max_discount"] is None
    assert offer["amount_off"] == 500


def test_switching_kind_without_the_new_field_names_it() -> None:
    with pytest.raises(ApiError) as caught:
        plan_update(stored(), {"kind": "service"})
    assert fields_of(caught.value) == ["nominal_value"]


def test_patch_giving_a_field_of_another_kind_names_it() -> None:
    with pytest.raises(ApiError) as caught:
        plan_update(stored(), {"fixed_price": 100})
    assert caught.value.code == "validation_error"
    assert fields_of(caught.value) == ["fixed_price"]


def test_plan_update_answers_only_changed_fields() -> None:
    diff = plan_update(stored(), {"title": "新标题", "percent_bp": 1000, "status": "paused"})
    assert diff == {"title": ["邮政寄递九折", "新标题"], "status": ["active", "paused"]}


def test_unredeemed_offer_may_change_pricing_and_tighten_limits() -> None:
    diff = plan_update(
        stored(total_redemptions=10, uses_per_voucher=3),
        {"percent_bp": 2000, "total_redemptions": 5, "uses_per_voucher": 1},
    )
    assert set(diff) == {"percent_bp", "total_redemptions", "uses_per_voucher"}


@pytest.mark.parametrize(
    "changes",
    [
        {"percent_bp": 1500},
        {"max_discount": 900},
        {"max_discount": None},
        {"min_purchase": 100},
        {"kind": "amount_off", "amount_off": 300},
    ],
)
def test_pricing_is_frozen_once_redeemed(changes: dict) -> None:
    with pytest.raises(ApiError) as caught:
        plan_update(redeemed(), changes)
    assert caught.value.code == "conflict"
    first = next(iter(changes))
    assert first in fields_of(caught.value)
    assert first in caught.value.detail


@pytest.mark.parametrize(
    "changes",
    [
        {"total_redemptions": 20},
        {"total_redemptions": None},
        {"total_redemptions": 3},  # down to what is used, no further
        {"budget": 9000},
        {"budget": 1500},
        {"budget": None},
        {"uses_per_voucher": 3},
        {"holder_limit_count": 3},
        {"holder_limit_count": 3, "holder_limit_period": "week"},
        {"holder_limit_count": None, "holder_limit_period": None},
        {"starts_at": START - timedelta(days=30)},
        {"ends_at": END + timedelta(days=30)},
        {"ends_at": None},
        {"starts_at": None},
        {"title": "新标题", "eligible_categories": ["veteran"], "voucher_valid_days": 7},
    ],
)
def test_loosening_once_redeemed_is_allowed(changes: dict) -> None:
    assert set(plan_update(redeemed(), changes)) == set(changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"total_redemptions": 2}, "total_redemptions"),
        ({"budget": 1499}, "budget"),
        ({"uses_per_voucher": 1}, "uses_per_voucher"),
        ({"holder_limit_count": 1}, "holder_limit"),
        ({"holder_limit_count": 2, "holder_limit_period": "year"}, "holder_limit"),
        ({"starts_at": START + timedelta(seconds=1)}, "starts_at"),
        ({"ends_at": END - timedelta(seconds=1)}, "ends_at"),
    ],
)
def test_tightening_below_use_once_redeemed_is_a_conflict(changes: dict, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        plan_update(redeemed(), changes)
    assert caught.value.code == "conflict"
    assert fields_of(caught.value) == [field]
    assert field in caught.value.detail


def test_imposing_a_limit_that_was_open_once_redeemed_is_a_conflict() -> None:
    offer = redeemed(holder_limit_count=None, holder_limit_period=None, ends_at=None)
    with pytest.raises(ApiError) as caught:
        plan_update(offer, {"holder_limit_count": 5, "holder_limit_period": "ever", "ends_at": END})
    assert fields_of(caught.value) == ["ends_at", "holder_limit"]
