"""Discount rules of the four offer kinds, and the one rounding rule."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.api.problems import status_of
from service.domain.errors import ApiError
from service.domain.pricing import PriceRule, Quote, budget_cost, quote, round_half_up_fen


def percent(bp: int, cap: int | None = None, min_purchase: int | None = None) -> PriceRule:
    return PriceRule("percent_off", percent_bp=bp, max_discount=cap, min_purchase=min_purchase)


# --- the rounding rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("purchase", "bp", "discount"),
    [
        (1, 1500, 0),  # 0.15 fen
        (3, 1500, 0),  # 0.45 fen
        (4, 1500, 1),  # 0.6 fen
        (10, 1500, 2),  # 1.5 fen: the half goes up
        (30, 1500, 5),  # 4.5 fen
        (1, 5000, 1),  # 0.5 fen: a half fen of a 1-fen purchase still goes up
        (100, 50, 1),  # 0.5 fen
        (4999, 1, 0),  # 0.4999 fen
        (5000, 1, 1),  # 0.5 fen
        (5001, 1, 1),  # 0.5001 fen
        (15000, 1, 2),  # 1.5 fen
        (12800, 1000, 1280),  # exact
        (1, 10000, 1),  # 100 %
    ],
)
def test_percent_discount_rounds_half_up_to_the_fen(purchase: int, bp: int, discount: int) -> None:
    assert quote(percent(bp), purchase).discount_amount == discount


def test_round_half_up_fen_rounds_halves_up_and_the_rest_to_nearest() -> None:
    assert round_half_up_fen(5, 10) == 1  # 0.5
    assert round_half_up_fen(15, 10) == 2  # 1.5 (banker's rounding would say 2 too)
    assert round_half_up_fen(25, 10) == 3  # 2.5 (banker's rounding would say 2)
    assert round_half_up_fen(24, 10) == 2
    assert round_half_up_fen(0, 7) == 0
    assert round_half_up_fen(7, 3) == 2  # 2.33…
    assert round_half_up_fen(8, 3) == 3  # 2.66…


@pytest.mark.parametrize(("numerator", "denominator"), [(1.5, 1), (1, 2.0), (True, 1), ("1", 1)])
def test_round_half_up_fen_refuses_anything_but_ints(
    numerator: object, denominator: object
) -> None:
    with pytest.raises(TypeError):
        round_half_up_fen(numerator, denominator)  # type: ignore[arg-type]


@pytest.mark.parametrize(("numerator", "denominator"), [(-1, 10), (1, 0), (1, -10)])
def test_round_half_up_fen_refuses_negative_numerators_and_non_positive_denominators(
    numerator: int, denominator: int
) -> None:
    with pytest.raises(ValueError):
        round_half_up_fen(numerator, denominator)


@given(st.integers(0, 10**15), st.integers(1, 10**6))
def test_round_half_up_fen_agrees_with_decimal_round_half_up(
    numerator: int, denominator: int
) -> None:
    with localcontext() as context:
        context.prec = 50
        exact = Decimal(numerator) / Decimal(denominator)
        expected = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert round_half_up_fen(numerator, denominator) == expected


# --- each kind ------------------------------------------------------------------------


def test_percent_off_gives_the_spec_example() -> None:
    rule = percent(1000, cap=5000, min_purchase=1000)
    assert quote(rule, 12800) == Quote(12800, 1280, 11520)


def test_percent_off_is_capped_by_max_discount() -> None:
    assert quote(percent(1000, cap=5000), 100_000) == Quote(100_000, 5000, 95_000)
    assert quote(percent(1000, cap=5000), 49_999) == Quote(49_999, 5000, 44_999)  # 4999.9 → 5000
    assert quote(percent(1000, cap=5000), 40_000).discount_amount == 4000  # under the cap


def test_percent_off_with_a_zero_cap_grants_nothing() -> None:
    assert quote(percent(1000, cap=0), 100_000) == Quote(100_000, 0, 100_000)


def test_hundred_percent_off_makes_the_purchase_free() -> None:
    assert quote(percent(10_000), 12_345) == Quote(12_345, 12_345, 0)


def test_amount_off_takes_its_amount_off() -> None:
    assert quote(PriceRule("amount_off", amount_off=300), 1000) == Quote(1000, 300, 700)


def test_amount_off_never_exceeds_the_purchase() -> None:
    assert quote(PriceRule("amount_off", amount_off=300), 200) == Quote(200, 200, 0)
    assert quote(PriceRule("amount_off", amount_off=300), 300) == Quote(300, 300, 0)


def test_fixed_price_grants_purchase_minus_price() -> None:
    assert quote(PriceRule("fixed_price", fixed_price=1000), 2500) == Quote(2500, 1500, 1000)


def test_fixed_price_above_the_purchase_grants_nothing() -> None:
    assert quote(PriceRule("fixed_price", fixed_price=1000), 800) == Quote(800, 0, 800)
    assert quote(PriceRule("fixed_price", fixed_price=1000), 1000) == Quote(1000, 0, 1000)


def test_fixed_price_of_zero_makes_the_purchase_free() -> None:
    assert quote(PriceRule("fixed_price", fixed_price=0), 700) == Quote(700, 700, 0)


def test_service_grants_its_nominal_value_and_leaves_payable_at_the_purchase() -> None:
    rule = PriceRule("service", nominal_value=2000)
    assert quote(rule, 5000) == Quote(5000, 2000, 5000)
    # The nominal value is declared by the offer, not taken from the purchase.
    assert quote(rule, 100) == Quote(100, 2000, 100)


# --- minimum purchase and bad amounts -------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        percent(1000, min_purchase=1000),
        PriceRule("amount_off", amount_off=300, min_purchase=1000),
        PriceRule("fixed_price", fixed_price=500, min_purchase=1000),
        PriceRule("service", nominal_value=2000, min_purchase=1000),
    ],
    ids=["percent_off", "amount_off", "fixed_price", "service"],
)
def test_purchase_below_min_purchase_is_refused(rule: PriceRule) -> None:
    with pytest.raises(ApiError) as refused:
        quote(rule, 999)
    assert refused.value.code == "below_min_purchase"
    assert status_of(refused.value) == 422
    assert quote(rule, 1000).purchase_amount == 1000  # exactly the minimum is enough


@pytest.mark.parametrize("amount", [0, -1, -12800, True, 1.0, 12.5, "12800", None])
def test_purchase_amount_must_be_a_positive_int(amount: object) -> None:
    with pytest.raises(ApiError) as refused:
        quote(percent(1000), amount)  # type: ignore[arg-type]
    assert refused.value.code == "validation_error"
    assert [error.field for error in refused.value.errors] == ["purchase_amount"]


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "half_off"},
        {"kind": "percent_off"},
        {"kind": "amount_off"},
        {"kind": "fixed_price"},
        {"kind": "service"},
        {"kind": "percent_off", "percent_bp": 0},
        {"kind": "percent_off", "percent_bp": 10_001},
        {"kind": "percent_off", "percent_bp": 10.5},
        {"kind": "percent_off", "percent_bp": 1000, "max_discount": -1},
        {"kind": "amount_off", "amount_off": -300},
        {"kind": "amount_off", "amount_off": 2.5},
        {"kind": "service", "nominal_value": True},
        {"kind": "amount_off", "amount_off": 300, "min_purchase": -1},
    ],
)
def test_a_rule_the_offer_rules_forbid_cannot_be_built(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PriceRule(**fields)  # type: ignore[arg-type]


# --- budget ---------------------------------------------------------------------------


def test_budget_cost_is_the_discount_granted() -> None:
    assert budget_cost(quote(percent(1500), 10)) == 2
    assert budget_cost(quote(PriceRule("amount_off", amount_off=300), 200)) == 200
    assert budget_cost(quote(PriceRule("fixed_price", fixed_price=1000), 800)) == 0


def test_budget_cost_of_a_service_is_its_nominal_value() -> None:
    assert budget_cost(quote(PriceRule("service", nominal_value=2000), 5000)) == 2000


# --- properties -----------------------------------------------------------------------

purchases = st.integers(min_value=1, max_value=10**10)  # up to ¥100 million
money = st.integers(min_value=0, max_value=10**10)
money_rules = st.one_of(
    st.builds(
        percent,
        bp=st.integers(1, 10_000),
        cap=st.none() | money,
    ),
    st.builds(PriceRule, kind=st.just("amount_off"), amount_off=money),
    st.builds(PriceRule, kind=st.just("fixed_price"), fixed_price=money),
)


@given(money_rules, purchases)
def test_money_discount_is_between_zero_and_the_purchase(rule: PriceRule, purchase: int) -> None:
    granted = quote(rule, purchase)
    assert 0 <= granted.discount_amount <= purchase


@given(money_rules, purchases)
def test_payable_is_purchase_minus_discount(rule: PriceRule, purchase: int) -> None:
    granted = quote(rule, purchase)
    assert granted.purchase_amount == purchase
    assert granted.payable_amount == purchase - granted.discount_amount
    assert budget_cost(granted) == granted.discount_amount


@given(money_rules | st.builds(PriceRule, kind=st.just("service"), nominal_value=money), purchases)
def test_every_amount_is_an_int_never_a_float(rule: PriceRule, purchase: int) -> None:
    granted = quote(rule, purchase)
    for amount in (granted.purchase_amount, granted.discount_amount, granted.payable_amount):
        assert type(amount) is int
    assert type(budget_cost(granted)) is int


@given(st.integers(1, 10_000), st.none() | money, purchases, purchases)
def test_percent_discount_never_falls_when_the_purchase_grows(
    bp: int, cap: int | None, first: int, second: int
) -> None:
    low, high = sorted((first, second))
    rule = percent(bp, cap=cap)
    assert quote(rule, low).discount_amount <= quote(rule, high).discount_amount


@given(st.integers(1, 10_000), money, purchases)
def test_percent_discount_never_exceeds_its_cap(bp: int, cap: int, purchase: int) -> None:
    assert quote(percent(bp, cap=cap), purchase).discount_amount <= cap


@given(st.integers(1, 10_000), purchases)
def test_percent_discount_is_within_half_a_fen_of_the_exact_value(bp: int, purchase: int) -> None:
    discount = quote(percent(bp), purchase).discount_amount
    # |discount − purchase·bp/10000| ≤ ½, in integers: |discount·20000 − purchase·bp·2| ≤ 10000
    assert abs(discount * 20_000 - purchase * bp * 2) <= 10_000


@given(money, purchases)
def test_service_leaves_the_price_alone(nominal: int, purchase: int) -> None:
    granted = quote(PriceRule("service", nominal_value=nominal), purchase)
    assert granted == Quote(purchase, nominal, purchase)


def test_a_service_offer_redeems_with_no_purchase_amount() -> None:
    # docs/api.md: a service's amount is left out, i.e. 0; it still grants its nominal value.
    assert quote(PriceRule("service", nominal_value=5000), 0) == Quote(0, 5000, 0)
