"""Pricing test vectors written by the service's own pricing (service.domain.pricing), for
the till's offline pricing (service/pages/static/pricing.js) to agree with fen for fen.

    python -m tests.browser.pricing_vectors > vectors.json

Each vector: {"rule": {the offer's pricing fields}, "purchase_amount": fen, "expect":
{"discount_amount", "payable_amount"} or {"problem": code}}. Deterministic: edge cases
of each kind (halves of a fen, caps, minimums, the largest amounts) and seeded random
ones.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import asdict
from typing import Any

from service.domain.errors import ApiError
from service.domain.pricing import BASIS_POINTS, PriceRule, quote

#: schemas.common.MAX_MONEY: the largest amount a purchase may be.
MAX_FEN = 10_000_000_000


def vector(rule: PriceRule, purchase: int) -> dict[str, Any]:
    fields = {name: value for name, value in asdict(rule).items() if value is not None}
    try:
        granted = quote(rule, purchase)
    except ApiError as refusal:
        expect: dict[str, Any] = {"problem": refusal.code}
    else:
        expect = {
            "discount_amount": granted.discount_amount,
            "payable_amount": granted.payable_amount,
        }
    return {"rule": fields, "purchase_amount": purchase, "expect": expect}


def _edge_rules() -> list[PriceRule]:
    return [
        PriceRule("percent_off", percent_bp=1500),
        PriceRule("percent_off", percent_bp=1),
        PriceRule("percent_off", percent_bp=BASIS_POINTS),
        PriceRule("percent_off", percent_bp=5000, max_discount=0),
        PriceRule("percent_off", percent_bp=1000, max_discount=5000, min_purchase=1000),
        PriceRule("percent_off", percent_bp=3333, max_discount=1),
        PriceRule("percent_off", percent_bp=9999, min_purchase=MAX_FEN),
        PriceRule("amount_off", amount_off=500),
        PriceRule("amount_off", amount_off=0),
        PriceRule("amount_off", amount_off=500, min_purchase=2000),
        PriceRule("amount_off", amount_off=MAX_FEN),
        PriceRule("fixed_price", fixed_price=1000),
        PriceRule("fixed_price", fixed_price=0),
        PriceRule("fixed_price", fixed_price=1000, min_purchase=1500),
        PriceRule("service", nominal_value=500),
        PriceRule("service", nominal_value=0, min_purchase=100),
    ]


def _edge_purchases() -> list[int]:
    # 0 (a service needs none), a fen, the halves of a fen at 10 %/15 %, the boundaries
    # of the minimums and caps above, and the largest purchase.
    return [0, 1, 3, 5, 10, 15, 999, 1000, 1001, 1499, 1500, 1999, 2000, 50_000, 50_001]


def _random_rule(rng: random.Random) -> PriceRule:
    kind = rng.choice(("percent_off", "percent_off", "amount_off", "fixed_price", "service"))
    min_purchase = rng.choice((None, None, rng.randint(0, 100_000)))
    if kind == "percent_off":
        return PriceRule(
            kind,
            percent_bp=rng.randint(1, BASIS_POINTS),
            max_discount=rng.choice((None, rng.randint(0, 1_000_000))),
            min_purchase=min_purchase,
        )
    if kind == "amount_off":
        return PriceRule(kind, amount_off=rng.randint(0, 200_000), min_purchase=min_purchase)
    if kind == "fixed_price":
        return PriceRule(kind, fixed_price=rng.randint(0, 200_000), min_purchase=min_purchase)
    return PriceRule(kind, nominal_value=rng.randint(0, 100_000), min_purchase=min_purchase)


def _random_purchase(rng: random.Random) -> int:
    small, usual, any_size = rng.randint(0, 100), rng.randint(0, 100_000), rng.randint(0, MAX_FEN)
    half_fen_at_10_percent = rng.randint(1, 999) * 10 + 5
    return rng.choice((small, usual, any_size, half_fen_at_10_percent))


def vectors(random_count: int = 400, seed: int = 29) -> list[dict[str, Any]]:
    cases = [vector(rule, p) for rule in _edge_rules() for p in (*_edge_purchases(), MAX_FEN)]
    rng = random.Random(seed)
    cases += [vector(_random_rule(rng), _random_purchase(rng)) for _ in range(random_count)]
    return cases


if __name__ == "__main__":
    json.dump(vectors(), sys.stdout, indent=None, separators=(",", ":"))
    sys.stdout.write("\n")
