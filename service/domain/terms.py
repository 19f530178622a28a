"""An offer's rules in plain words, in Chinese and English, written once by the service.

The wallet, the till and the directory show these words; no page works them out again
(a page that does will one day disagree with the server). They say what the offer grants
(kind and amount or percentage, its cap), from what purchase, when it is valid (in the
programme's time zone: an offer that ends at 00:00 on 2 January is valid *through*
1 January), who may use it, and how often.

    满¥10可用，9折，最多减¥50
    10% off purchases of ¥10 or more, at most ¥50 off
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from service.domain.offers import OfferRules
from service.domain.pricing import BASIS_POINTS, PriceRule

#: The holder categories as people name them (docs/product.md).
CATEGORY_NAMES = {
    "veteran": ("退役军人", "veterans"),
    "disabled_veteran": ("残疾退役军人", "disabled veterans"),
    "martyr_family": ("烈士遗属", "martyrs' families"),
    "military_family": ("军属", "military families"),
    "other": ("其他优抚对象", "other card holders"),
}
_PERIODS = {
    "day": ("每天", "a day"),
    "week": ("每周", "a week"),
    "month": ("每月", "a month"),
    "year": ("每年", "a year"),
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class Terms:
    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


def yuan(fen: int) -> str:
    """¥10, ¥10.50: whole yuan without decimals, otherwise to the fen."""
    whole, cents = divmod(fen, 100)
    return f"¥{whole}" if cents == 0 else f"¥{whole}.{cents:02d}"


def _decimal(value: int, scale: int) -> str:
    """value / scale written with as few decimals as it needs (integers only)."""
    whole, rest = divmod(value, scale)
    if rest == 0:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def _effect(rule: PriceRule) -> tuple[str, str]:
    if rule.kind == "percent_off":
        assert rule.percent_bp is not None
        if rule.percent_bp == BASIS_POINTS:
            return "免费", "free"
        # 10 % off is 9折: the holder pays nine tenths.
        zhe = _decimal(BASIS_POINTS - rule.percent_bp, 1_000)
        return f"{zhe}折", f"{_decimal(rule.percent_bp, 100)}% off"
    if rule.kind == "amount_off":
        assert rule.amount_off is not None
        return f"立减{yuan(rule.amount_off)}", f"{yuan(rule.amount_off)} off"
    if rule.kind == "fixed_price":
        assert rule.fixed_price is not None
        return f"最多付{yuan(rule.fixed_price)}", f"pay at most {yuan(rule.fixed_price)}"
    assert rule.nominal_value is not None
    return (
        f"优先服务（价值{yuan(rule.nominal_value)}）",
        f"priority service (worth {yuan(rule.nominal_value)})",
    )


def _day(moment: datetime, tz: ZoneInfo) -> tuple[str, str]:
    day = moment.astimezone(tz).date()
    return f"{day.year}年{day.month}月{day.day}日", f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def terms_of(
    rule: PriceRule,
    *,
    starts_at: datetime | None,
    ends_at: datetime | None,
    eligible_categories: Sequence[str],
    uses_per_voucher: int,
    holder_limit_count: int | None,
    holder_limit_period: str | None,
    tz: ZoneInfo,
) -> Terms:
    zh: list[str] = []
    en: list[str] = []
    effect_zh, effect_en = _effect(rule)
    if rule.min_purchase:
        zh.append(f"满{yuan(rule.min_purchase)}可用")
        joiner = " on" if rule.kind in ("fixed_price", "service") else ""
        en.append(f"{effect_en}{joiner} purchases of {yuan(rule.min_purchase)} or more")
    else:
        en.append(effect_en)
    zh.append(effect_zh)
    if rule.kind == "percent_off" and rule.max_discount is not None:
        zh.append(f"最多减{yuan(rule.max_discount)}")
        en.append(f"at most {yuan(rule.max_discount)} off")
    if starts_at is not None:
        day_zh, day_en = _day(starts_at, tz)
        zh.append(f"{day_zh}起")
        en.append(f"from {day_en}")
    if ends_at is not None:
        # The end is exclusive: the last day valid is the one before its instant.
        day_zh, day_en = _day(ends_at - timedelta(microseconds=1), tz)
        zh.append(f"有效期至{day_zh}")
        en.append(f"valid through {day_en}")
    if eligible_categories:
        names = [CATEGORY_NAMES[category] for category in eligible_categories]
        zh.append("限" + "、".join(name for name, _ in names) + "使用")
        *others, last = [name for _, name in names]
        en.append(f"for {', '.join(others)} and {last}" if others else f"for {last}")
    else:
        zh.append("所有持证人可用")
        en.append("for every card holder")
    if uses_per_voucher > 1:
        zh.append(f"每张券可用{uses_per_voucher}次")
        en.append(f"{uses_per_voucher} uses per voucher")
    if holder_limit_count is not None:
        if holder_limit_period in _PERIODS:
            period_zh, period_en = _PERIODS[holder_limit_period]
            zh.append(f"每人{period_zh}限{holder_limit_count}次")
            en.append(f"{_times(holder_limit_count)} {period_en} per holder")
        else:  # "ever"
            zh.append(f"每人限{holder_limit_count}次")
            en.append(f"{_times(holder_limit_count)} per holder in all")
    return Terms("，".join(zh), ", ".join(en))


def terms_of_offer(offer: OfferRules, tz: ZoneInfo) -> Terms:
    """An offer's terms in words, from the offer's own fields."""
    return terms_of(
        offer.price_rule,
        starts_at=offer.starts_at,
        ends_at=offer.ends_at,
        eligible_categories=offer.eligible_categories,
        uses_per_voucher=offer.uses_per_voucher,
        holder_limit_count=offer.holder_limit_count,
        holder_limit_period=offer.holder_limit_period,
        tz=tz,
    )


def _times(count: int) -> str:
    return "once" if count == 1 else "twice" if count == 2 else f"{count} times"
