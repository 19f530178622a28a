"""The redemption rules as plain functions: the clock and the time zone are arguments,
so every boundary is tested in microseconds without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.domain.errors import ApiError
from service.domain.pricing import PriceRule
from service.domain.redemptions import (
    RedemptionFacts,
    check_limits,
    check_redemption,
    check_reversal,
    limit_refusal,
)
from service.domain.vouchers import Eligibility

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime.fromisoformat("2026-06-15T12:00:00+08:00")


def facts(**changes: object) -> RedemptionFacts:
    eligibility = Eligibility(
        holder_status="active",
        holder_category="veteran",
        card_valid_until=date(2030, 12, 31),
        offer_status="active",
        offer_starts_at=NOW - timedelta(days=30),
        offer_ends_at=NOW + timedelta(days=30),
        eligible_categories=(),
        partner_status="active",
    )
    eligibility = replace(
        eligibility, **{k: v for k, v in changes.items() if hasattr(eligibility, k)}
    )
    base = RedemptionFacts(
        eligibility=eligibility,
        voucher_status="active",
        voucher_uses_left=1,
        voucher_expires_at=NOW + timedelta(days=10),
        price_rule=PriceRule(kind="percent_off", percent_bp=1000),
        holder_limit_count=None,
        holder_limit_period=None,
        total_redemptions=None,
        redeemed_count=0,
        budget=None,
        spent=0,
    )
    return replace(base, **{k: v for k, v in changes.items() if hasattr(base, k)})


def refusal(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as raised:
        call()
    return raised.value.code


def test_a_valid_voucher_is_granted_its_discount() -> None:
    grant = check_redemption(facts(), 10_000, NOW, SHANGHAI)
    assert (grant.quote.discount_amount, grant.quote.payable_amount) == (1_000, 9_000)
    assert grant.holder_period_start is None


def test_offer_whose_end_was_moved_before_now_refuses_a_voucher_that_has_not_expired() -> None:
    # A PATCH moved ends_at earlier after the voucher was issued: the voucher keeps its
    # later expiry, so the offer's own window is the only guard.
    moved = facts(offer_ends_at=NOW - timedelta(minutes=1))
    assert moved.voucher_expires_at > NOW
    assert refusal(lambda: check_redemption(moved, 10_000, NOW, SHANGHAI)) == "offer_inactive"


def test_offer_ends_exactly_at_its_end_instant() -> None:
    ends_now = facts(offer_ends_at=NOW)
    assert refusal(lambda: check_redemption(ends_now, 10_000, NOW, SHANGHAI)) == "offer_inactive"
    just_before = facts(offer_ends_at=NOW + timedelta(microseconds=1))
    check_redemption(just_before, 10_000, NOW, SHANGHAI)


def test_offer_not_started_is_refused() -> None:
    later = facts(offer_starts_at=NOW + timedelta(seconds=1))
    assert refusal(lambda: check_redemption(later, 10_000, NOW, SHANGHAI)) == "offer_inactive"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        # Every rule broken at once: the partner's comes first (after the token's).
        (
            {
                "partner_status": "suspended",
                "voucher_status": "revoked",
                "holder_status": "revoked",
                "offer_status": "paused",
            },
            "partner_inactive",
        ),
        ({"voucher_status": "revoked", "holder_status": "revoked"}, "voucher_revoked"),
        ({"voucher_expires_at": NOW, "holder_status": "suspended"}, "voucher_expired"),
        ({"voucher_uses_left": 0, "holder_status": "suspended"}, "voucher_used_up"),
        ({"holder_status": "suspended", "offer_status": "paused"}, "holder_inactive"),
        ({"card_valid_until": date(2026, 6, 14), "offer_status": "paused"}, "holder_inactive"),
        (
            {"eligible_categories": ("martyr_family",), "offer_status": "paused"},
            "holder_ineligible",
        ),
        ({"offer_status": "paused"}, "offer_inactive"),
    ],
)
def test_the_first_rule_broken_in_spec_order_is_the_answer(
    changes: dict[str, object], code: str
) -> None:
    assert refusal(lambda: check_redemption(facts(**changes), 10_000, NOW, SHANGHAI)) == code


def test_card_valid_until_today_is_still_valid_late_in_the_local_evening() -> None:
    late = datetime.fromisoformat("2026-06-15T23:59:00+08:00")
    check_redemption(facts(card_valid_until=date(2026, 6, 15)), 10_000, late, SHANGHAI)


def test_holder_period_is_the_local_month() -> None:
    early_first = datetime.fromisoformat("2026-07-01T03:00:00+08:00")
    limited = facts(
        holder_limit_count=2,
        holder_limit_period="month",
        voucher_expires_at=early_first + timedelta(days=1),
        offer_ends_at=early_first + timedelta(days=1),
    )
    grant = check_redemption(limited, 10_000, early_first, SHANGHAI)
    assert grant.holder_period_start == datetime.fromisoformat("2026-07-01T00:00:00+08:00")


def test_limits_in_order_holder_then_total_then_budget() -> None:
    grant = check_redemption(facts(), 10_000, NOW, SHANGHAI)
    everything_spent = facts(
        holder_limit_count=1,
        holder_limit_period="month",
        total_redemptions=3,
        redeemed_count=3,
        budget=500,
        spent=0,
    )
    assert refusal(lambda: check_limits(everything_spent, grant, 1)) == "holder_limit_reached"
    assert refusal(lambda: check_limits(everything_spent, grant, 0)) == "offer_exhausted"
    budget_only = facts(budget=1_500, spent=501)
    assert refusal(lambda: check_limits(budget_only, grant, 0)) == "budget_exhausted"
    check_limits(facts(budget=1_500, spent=500), grant, 0)  # exactly the budget: allowed


def test_limit_refusal_names_a_paused_offer_before_its_limits() -> None:
    grant = check_redemption(facts(), 10_000, NOW, SHANGHAI)
    exhausted = facts(total_redemptions=1, redeemed_count=1)
    assert limit_refusal(exhausted, grant, 0, "paused").code == "offer_inactive"
    assert limit_refusal(exhausted, grant, 0, "active").code == "offer_exhausted"
    # The counters moved away again: still reported as a limit, never as success.
    assert limit_refusal(facts(), grant, 0, "active").code == "offer_exhausted"


def test_reversal_inside_the_window_is_allowed() -> None:
    check_reversal(NOW - timedelta(days=30), False, NOW, 30)


def test_reversal_after_the_window_is_refused() -> None:
    created = NOW - timedelta(days=30, seconds=1)
    assert refusal(lambda: check_reversal(created, False, NOW, 30)) == "reversal_window_closed"


def test_already_reversed_wins_over_a_closed_window() -> None:
    # A redemption reversed long ago is "already reversed", not "too late".
    created = NOW - timedelta(days=400)
    assert refusal(lambda: check_reversal(created, True, NOW, 30)) == "already_reversed"
