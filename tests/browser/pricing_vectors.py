"""Test vectors for the till's offline pricing (docs/rules.md, "Offline redemptions"):
cases priced by the service's own `service.domain.pricing.quote`, written to
tests/browser/pricing_vectors.json for the /scan page's pricing to agree with, fen for fen.

Regenerate after a change of the pricing rules:

    python -m tests.browser.pricing_vectors

tests/unit/test_pricing_vectors.py fails while the committed file is stale.

The file is a JSON list; each case is
    {"offer": {"kind", "percent_bp", "max_discount", "amount_off", "fixed_price",
               "nominal_value", "min_purchase"},   # as GET /v1/till/pack lists an offer
     "purchase_amount": fen,
     then either "discount_amount" and "payable_amount" (fen),
     or "refusal": the problem code the service answers (below_min_purchase, or
     validation_error for a priced offer sent without an amount).}
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from schemas.common import MAX_MONEY
from service.domain.errors import ApiError
from service.domain.pricing import BASIS_POINTS, PriceRule, quote

PATH = Path(__file__).with_name("pricing_vectors.json")

#: Purchases that sit on the edges: the smallest, halves of a fen at common rates,
#: round yuan either side, and the largest the API accepts.
_PURCHASES = (1, 2, 3, 5, 7, 10, 15, 33, 50, 99, 100, 101, 149, 150, 151, 999, 1000, 1001)
_LARGE = (12_800, 12_801, 99_999, 1_000_000, MAX_MONEY - 1, MAX_MONEY)
_RATES = (1, 5, 50, 333, 1000, 1500, 2500, 3333, 5000, 6667, 9999, BASIS_POINTS)


def _rules() -> Iterator[PriceRule]:
    for bp in _RATES:
        for cap in (None, 1, 150, 5000):
            yield PriceRule("percent_off", percent_bp=bp, max_discount=cap)
    for off in (1, 300, 5000):
        yield PriceRule("amount_off", amount_off=off)
    for price in (0, 1, 1000, 3500):
        yield PriceRule("fixed_price", fixed_price=price)
    for nominal in (0, 500):
        yield PriceRule("service", nominal_value=nominal)


def _with_minimum(rule: PriceRule, minimum: int) -> PriceRule:
    return PriceRule(**{**asdict(rule), "min_purchase": minimum})


def _case(rule: PriceRule, purchase: int) -> dict[str, Any]:
    case: dict[str, Any] = {"offer": asdict(rule), "purchase_amount": purchase}
    try:
        granted = quote(rule, purchase)
    except ApiError as refusal:
        return {**case, "refusal": refusal.code}
    return {
        **case,
        "discount_amount": granted.discount_amount,
        "payable_amount": granted.payable_amount,
    }


def cases() -> list[dict[str, Any]]:
    """Every case, in a fixed order (the same file on every machine)."""
    found = []
    rules = list(_rules())
    for rule in rules:
        purchases = (0, *_PURCHASES[::3], *_LARGE[::2]) if rule.kind != "percent_off" else ()
        found += [_case(rule, purchase) for purchase in purchases]
    for bp in _RATES:  # every rate on every edge, uncapped: the rounding
        rule = PriceRule("percent_off", percent_bp=bp)
        found += [_case(rule, purchase) for purchase in (*_PURCHASES, *_LARGE)]
    for rule in rules:  # caps, and one purchase either side of the minimum spend
        for minimum in (0, 1000):
            bounded = _with_minimum(rule, minimum)
            found += [_case(bounded, p) for p in (minimum - 1, minimum, minimum + 1, 12_345)]
    rng = random.Random(29)  # issue 29: fixed, so the file is reproducible
    for _ in range(150):
        rule = rng.choice(rules)
        if rng.random() < 0.3:
            rule = _with_minimum(rule, rng.randint(0, 20_000))
        found.append(_case(rule, rng.choice([rng.randint(1, 50_000), rng.randint(1, MAX_MONEY)])))
    return [case for case in found if case["purchase_amount"] >= 0]


def text() -> str:
    return (
        json.dumps(cases(), ensure_ascii=False, indent=None, separators=(",", ":")).replace(
            '},{"offer"', '},\n{"offer"'
        )
        + "\n"
    )


def main() -> None:
    PATH.write_text(text(), encoding="utf-8")
    print(f"{len(cases())} cases written to {PATH}")


if __name__ == "__main__":
    main()
