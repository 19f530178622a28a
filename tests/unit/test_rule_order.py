"""docs/api.md: a refused redemption answers the problem of the first rule broken, in the
order token, partner, voucher, holder, offer, limits. RULE_ORDER writes that order
once; this checks `judge` against it, every rule against every later one."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from service.domain.errors import ApiError
from service.domain.redemptions import RULE_ORDER, RULE_PROBLEMS, RedemptionFacts, judge
from tests.unit.test_redemptions_domain import NOW, SHANGHAI, facts

PURCHASE = 10_000

#: For each problem `judge` answers, what breaks that rule alone: fact changes, and the
#: holder's uses in the period.
BREAKS: dict[str, tuple[dict[str, Any], int]] = {
    "partner_inactive": ({"partner_status": "suspended"}, 0),
    "voucher_revoked": ({"voucher_status": "revoked"}, 0),
    "voucher_expired": ({"voucher_expires_at": NOW - timedelta(seconds=1)}, 0),
    "voucher_used_up": ({"voucher_uses_left": 0}, 0),
    "holder_inactive": ({"holder_status": "suspended"}, 0),
    "holder_ineligible": ({"eligible_categories": ("martyr_family",)}, 0),
    "offer_inactive": ({"offer_status": "paused"}, 0),
    "below_min_purchase": ({"min_purchase": PURCHASE + 1}, 0),
    "holder_limit_reached": ({"holder_limit_count": 1, "holder_limit_period": "month"}, 1),
    "offer_exhausted": ({"total_redemptions": 5, "redeemed_count": 5}, 0),
    "budget_exhausted": ({"budget": 500, "spent": 500}, 0),
}


def broken(*problems: str) -> tuple[RedemptionFacts, int]:
    changes: dict[str, Any] = {}
    uses = 0
    for problem in problems:
        more, problem_uses = BREAKS[problem]
        changes.update(more)
        uses = max(uses, problem_uses)
    min_purchase = changes.pop("min_purchase", None)
    result = facts(**changes)
    if min_purchase is not None:
        result = replace(result, price_rule=replace(result.price_rule, min_purchase=min_purchase))
    return result, uses


def refused(the_facts: RedemptionFacts, uses: int) -> str:
    with pytest.raises(ApiError) as raised:
        judge(the_facts, PURCHASE, uses, NOW, SHANGHAI)
    return raised.value.code


def test_the_order_is_the_specs() -> None:
    assert [rule for rule, _ in RULE_ORDER] == [
        "token", "partner", "voucher", "holder", "offer", "limits"
    ]  # fmt: skip
    # The token's and the partner's own check (wrong_partner) come before judge, in scan.
    judged = RULE_PROBLEMS[RULE_PROBLEMS.index("partner_inactive") :]
    assert list(BREAKS) == list(judged)


def test_nothing_broken_is_granted() -> None:
    the_facts, uses = broken()
    assert judge(the_facts, PURCHASE, uses, NOW, SHANGHAI).quote.discount_amount == 1_000


@pytest.mark.parametrize("problem", list(BREAKS))
def test_each_rule_alone_answers_its_own_problem(problem: str) -> None:
    assert refused(*broken(problem)) == problem


PAIRS = list(itertools.combinations(BREAKS, 2))


@pytest.mark.parametrize(("first", "later"), PAIRS, ids=[f"{a}-before-{b}" for a, b in PAIRS])
def test_a_rule_is_answered_before_every_later_one(first: str, later: str) -> None:
    assert refused(*broken(first, later)) == first
