"""What an offer grants on a purchase: the discount rule of each offer kind.

Money is integer fen throughout; no float is ever involved, so a total of a million
redemptions adds up to the fen. The one rounding rule is `round_half_up_fen`.
The discount is computed here once, at redemption, and stored; it is never
recomputed later (docs/product.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.errors import ApiError, validation_error
from service.domain.language import Said

KINDS = ("percent_off", "amount_off", "fixed_price", "service")
#: Every amount is in fen of this currency (docs/product.md).
CURRENCY = "CNY"

#: 10 000 basis points = 100 %.
BASIS_POINTS = 10_000

#: The field each kind cannot do without.
_REQUIRED = {
    "percent_off": "percent_bp",
    "amount_off": "amount_off",
    "fixed_price": "fixed_price",
    "service": "nominal_value",
}
_MONEY_FIELDS = ("max_discount", "amount_off", "fixed_price", "nominal_value", "min_purchase")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class PriceRule:
    """The price effect of one offer (money in fen, percentages in basis points)."""

    kind: str
    percent_bp: int | None = None
    max_discount: int | None = None
    amount_off: int | None = None
    fixed_price: int | None = None
    nominal_value: int | None = None
    min_purchase: int | None = None

    def __post_init__(self) -> None:
        # A rule that breaks these is a bug or bad data, not a caller's mistake: the offer
        # schema and the offers table refuse such offers long before a purchase is priced.
        if self.kind not in _REQUIRED:
            raise ValueError(f"unknown offer kind {self.kind!r}")
        if getattr(self, _REQUIRED[self.kind]) is None:
            raise ValueError(f"a {self.kind} rule needs {_REQUIRED[self.kind]}")
        if self.percent_bp is not None and not (
            _is_int(self.percent_bp) and 1 <= self.percent_bp <= BASIS_POINTS
        ):
            raise ValueError(f"percent_bp must be an int in 1..{BASIS_POINTS}")
        for name in _MONEY_FIELDS:
            value = getattr(self, name)
            if value is not None and not (_is_int(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative int (fen)")


@dataclass(frozen=True, slots=True)
class Quote:
    """What one purchase is granted, in fen.

    For money kinds payable = purchase − discount. For `service` the discount is the
    offer's declared nominal value (it counts toward the totals) and the holder pays
    the full purchase.
    """

    purchase_amount: int
    discount_amount: int
    payable_amount: int


def round_half_up_fen(numerator: int, denominator: int) -> int:
    """THE rounding rule of the service: numerator / denominator to the nearest fen, halves up.

    Integer arithmetic only, so 0.5 fen always becomes 1 fen (never banker's rounding,
    never a binary float that is a hair below .5). 1500 bp of 10 fen = 1.5 → 2 fen;
    of 3 fen = 0.45 → 0 fen.
    """
    if not (_is_int(numerator) and _is_int(denominator)):
        raise TypeError("round_half_up_fen takes ints only")
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up_fen needs numerator >= 0 and denominator > 0")
    return (2 * numerator + denominator) // (2 * denominator)


def quote(rule: PriceRule, purchase_amount: int) -> Quote:
    """The discount and the amount to pay for `purchase_amount` fen under `rule`."""
    if not _is_int(purchase_amount) or purchase_amount < 0:
        raise validation_error(
            "purchase_amount",
            Said("must be a whole number of fen above 0", "必须是大于 0 的整数（单位：分）"),
        )
    # A service offer needs no amount (docs/api.md: left out, it is 0); a price effect does.
    if purchase_amount == 0 and rule.kind != "service":
        raise validation_error(
            "purchase_amount",
            Said("must be a whole number of fen above 0", "必须是大于 0 的整数（单位：分）"),
        )
    if rule.min_purchase is not None and purchase_amount < rule.min_purchase:
        raise ApiError(
            "below_min_purchase",
            Said(
                f"This offer needs a purchase of at least {rule.min_purchase} fen; "
                f"the purchase is {purchase_amount} fen",
                f"此优惠要求消费至少 {rule.min_purchase} 分；本次消费为 {purchase_amount} 分",
            ),
            # Machine-readable, so a till says the minimum in its own words and language.
            extra={"min_purchase": rule.min_purchase},
        )
    if rule.kind == "service":
        nominal = rule.nominal_value
        assert nominal is not None  # checked in PriceRule
        return Quote(purchase_amount, nominal, purchase_amount)
    discount = _money_discount(rule, purchase_amount)
    return Quote(purchase_amount, discount, purchase_amount - discount)


def _money_discount(rule: PriceRule, purchase: int) -> int:
    if rule.kind == "percent_off":
        assert rule.percent_bp is not None
        discount = round_half_up_fen(purchase * rule.percent_bp, BASIS_POINTS)
        if rule.max_discount is not None:
            discount = min(discount, rule.max_discount)
        return discount
    if rule.kind == "amount_off":
        assert rule.amount_off is not None
        return min(rule.amount_off, purchase)
    assert rule.fixed_price is not None  # fixed_price: the holder pays at most this
    return max(purchase - rule.fixed_price, 0)


def budget_cost(granted: Quote) -> int:
    """What one redemption spends from its offer's budget, in fen.

    The discount granted; for a `service` offer that is its nominal value (already
    carried as the quote's discount). Budgets, totals and reports all count this one
    figure, so they agree to the fen.
    """
    return granted.discount_amount
