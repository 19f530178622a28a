"""An offer's terms in words (domain/terms.py): every kind and every optional rule, in
both languages, as the wallet, the till and the directory show them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from service.domain.pricing import PriceRule
from service.domain.terms import terms_of, yuan

SHANGHAI = ZoneInfo("Asia/Shanghai")


def terms(rule: PriceRule, **rules: object) -> tuple[str, str]:
    values: dict = {
        "starts_at": None,
        "ends_at": None,
        "eligible_categories": [],
        "uses_per_voucher": 1,
        "holder_limit_count": None,
        "holder_limit_period": None,
        **rules,
    }
    made = terms_of(rule, tz=SHANGHAI, **values)
    return made.zh, made.en


CASES = [
    # (rule, other rules, zh, en)
    (
        PriceRule("percent_off", percent_bp=1000, max_discount=5000, min_purchase=1000),
        {},
        "满¥10可用，9折，最多减¥50，所有持证人可用",
        "10% off purchases of ¥10 or more, at most ¥50 off, for every card holder",
    ),
    (
        PriceRule("percent_off", percent_bp=1550),
        {},
        "8.45折，所有持证人可用",
        "15.5% off, for every card holder",
    ),
    (
        PriceRule("percent_off", percent_bp=10_000),
        {},
        "免费，所有持证人可用",
        "free, for every card holder",
    ),
    (
        PriceRule("amount_off", amount_off=550, min_purchase=3000),
        {},
        "满¥30可用，立减¥5.50，所有持证人可用",
        "¥5.50 off purchases of ¥30 or more, for every card holder",
    ),
    (
        PriceRule("fixed_price", fixed_price=3000),
        {},
        "最多付¥30，所有持证人可用",
        "pay at most ¥30, for every card holder",
    ),
    (
        PriceRule("fixed_price", fixed_price=3000, min_purchase=5000),
        {},
        "满¥50可用，最多付¥30，所有持证人可用",
        "pay at most ¥30 on purchases of ¥50 or more, for every card holder",
    ),
    (
        PriceRule("service", nominal_value=500),
        {},
        "优先服务（价值¥5），所有持证人可用",
        "priority service (worth ¥5), for every card holder",
    ),
    (
        # An offer that ends at 00:00 on 2 January (local) is valid through 1 January.
        PriceRule("amount_off", amount_off=100),
        {"ends_at": datetime(2027, 1, 1, 16, 0, tzinfo=UTC)},
        "立减¥1，有效期至2027年1月1日，所有持证人可用",
        "¥1 off, valid through 1 Jan 2027, for every card holder",
    ),
    (
        PriceRule("amount_off", amount_off=100),
        {"starts_at": datetime(2026, 7, 1, tzinfo=SHANGHAI)},
        "立减¥1，2026年7月1日起，所有持证人可用",
        "¥1 off, from 1 Jul 2026, for every card holder",
    ),
    (
        # A start and an end, each on its local day.
        PriceRule("amount_off", amount_off=100),
        {
            "starts_at": datetime(2026, 1, 1, tzinfo=SHANGHAI),
            "ends_at": datetime(2027, 1, 1, tzinfo=SHANGHAI),
        },
        "立减¥1，2026年1月1日起，有效期至2026年12月31日，所有持证人可用",
        "¥1 off, from 1 Jan 2026, valid through 31 Dec 2026, for every card holder",
    ),
    (
        PriceRule("amount_off", amount_off=100),
        {"eligible_categories": ["veteran"]},
        "立减¥1，限退役军人使用",
        "¥1 off, for veterans",
    ),
    (
        PriceRule("amount_off", amount_off=100),
        {"eligible_categories": ["veteran", "martyr_family", "military_family"]},
        "立减¥1，限退役军人、烈士遗属、军属使用",
        "¥1 off, for veterans, martyrs' families and military families",
    ),
    (
        PriceRule("amount_off", amount_off=100),
        {"uses_per_voucher": 3, "holder_limit_count": 2, "holder_limit_period": "month"},
        "立减¥1，所有持证人可用，每张券可用3次，每人每月限2次",
        "¥1 off, for every card holder, 3 uses per voucher, twice a month per holder",
    ),
    (
        PriceRule("amount_off", amount_off=100),
        {"holder_limit_count": 1, "holder_limit_period": "ever"},
        "立减¥1，所有持证人可用，每人限1次",
        "¥1 off, for every card holder, once per holder in all",
    ),
    (
        PriceRule("amount_off", amount_off=100),
        {"holder_limit_count": 5, "holder_limit_period": "day"},
        "立减¥1，所有持证人可用，每人每天限5次",
        "¥1 off, for every card holder, 5 times a day per holder",
    ),
]


@pytest.mark.parametrize(("rule", "rules", "zh", "en"), CASES)
def test_terms_say_the_rules_in_both_languages(
    rule: PriceRule, rules: dict, zh: str, en: str
) -> None:
    assert terms(rule, **rules) == (zh, en)


@pytest.mark.parametrize(
    ("fen", "text"), [(0, "¥0"), (1, "¥0.01"), (10, "¥0.10"), (1000, "¥10"), (123456, "¥1234.56")]
)
def test_money_reads_as_yuan(fen: int, text: str) -> None:
    assert yuan(fen) == text


def test_every_period_and_category_has_words() -> None:
    from service.domain.categories import HOLDER_CATEGORIES
    from service.domain.periods import PERIODS

    for period in PERIODS:
        zh, en = terms(
            PriceRule("amount_off", amount_off=1), holder_limit_count=3, holder_limit_period=period
        )
        assert "3次" in zh and "3 times" in en
    zh, en = terms(
        PriceRule("amount_off", amount_off=1), eligible_categories=list(HOLDER_CATEGORIES)
    )
    assert zh.count("、") == len(HOLDER_CATEGORIES) - 1 and en.count(" and ") == 1
