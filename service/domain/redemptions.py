"""Redemption rules, checked in the documented order (docs/rules.md): token, partner,
voucher, holder, offer, limits (RULE_ORDER). The token is checked by
service.domain.tokens.verify and the partner by the flow that resolved the token;
everything after is `judge`, as plain functions over the facts read in one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from service.domain.errors import ApiError, validation_error
from service.domain.language import Said
from service.domain.periods import period_start
from service.domain.pricing import PriceRule, Quote, budget_cost, quote
from service.domain.vouchers import Eligibility, check_holder, check_offer, effective_status

#: docs/api.md: "the problem for the first rule broken, in this order". The one place the
#: order is written: `judge` follows it (tests/unit check each step against the next),
#: and the API documents its problems from it.
RULE_ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("token", ("token_invalid", "token_expired", "token_not_yet_valid")),
    ("partner", ("wrong_partner", "partner_inactive")),
    ("voucher", ("voucher_revoked", "voucher_expired", "voucher_used_up")),
    ("holder", ("holder_inactive", "holder_ineligible")),
    ("offer", ("offer_inactive", "below_min_purchase")),
    ("limits", ("holder_limit_reached", "offer_exhausted", "budget_exhausted")),
)
#: Every problem a redemption's rules can answer, in rule order.
RULE_PROBLEMS = tuple(code for _, problems in RULE_ORDER for code in problems)


#: docs/rules.md, "Offline redemptions": how long ago a till may have made a redemption it
#: sends now, and how far its clock may run ahead of the service's.
OFFLINE_MAX_AGE = timedelta(hours=72)
OFFLINE_MAX_AHEAD = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RedemptionFacts:
    """Everything the rules need about one voucher, its holder, offer and partner."""

    eligibility: Eligibility
    voucher_status: str
    voucher_uses_left: int
    voucher_expires_at: datetime
    price_rule: PriceRule
    holder_limit_count: int | None
    holder_limit_period: str | None
    total_redemptions: int | None
    redeemed_count: int
    budget: int | None
    spent: int


@dataclass(frozen=True, slots=True)
class Grant:
    """What a redemption would grant, and what it spends."""

    quote: Quote
    budget_cost: int
    #: The holder-limit period this use counts in (None: the offer has no holder limit).
    holder_period_start: datetime | None


def judge(
    facts: RedemptionFacts,
    purchase_amount: int,
    holder_period_uses: int,
    now: datetime,
    tz: ZoneInfo,
) -> Grant:
    """The grant for this purchase, or the first rule broken after the token's: the one
    judgement of preview and of both ways of redeeming. `holder_period_uses`: the
    holder's uses of the offer in the period that holds `now` (holder_period_start).

    Redeem then enforces the limits again in the database, atomically, and asks
    `limit_refusal` which one refused when the counters moved in between."""
    grant = check_redemption(facts, purchase_amount, now, tz)
    check_limits(facts, grant, holder_period_uses)
    return grant


def holder_period_start(facts: RedemptionFacts, now: datetime, tz: ZoneInfo) -> datetime | None:
    """The start of the holder-limit period that holds `now` (None: no holder limit)."""
    if facts.holder_limit_period is None:
        return None
    return period_start(facts.holder_limit_period, now, tz)


def check_redemption(
    facts: RedemptionFacts, purchase_amount: int, now: datetime, tz: ZoneInfo
) -> Grant:
    """The grant for this purchase, or the first rule broken from the partner's to the
    offer's (the limits: check_limits)."""
    if facts.eligibility.partner_status != "active":
        raise ApiError(
            "partner_inactive",
            Said("The partner is not active in the programme", "合作商户在本项目中未生效"),
        )
    check_voucher(facts, now)
    check_holder(facts.eligibility, now, tz)
    check_offer(facts.eligibility, now)
    granted = quote(facts.price_rule, purchase_amount)
    return Grant(granted, budget_cost(granted), holder_period_start(facts, now, tz))


def check_voucher(facts: RedemptionFacts, now: datetime) -> None:
    status = effective_status(facts.voucher_status, facts.voucher_expires_at, now)
    if status == "revoked":
        raise ApiError("voucher_revoked", Said("The voucher has been revoked", "优待券已被撤销"))
    if status == "expired":
        raise ApiError("voucher_expired", Said("The voucher has expired", "优待券已过期"))
    if status == "used_up" or facts.voucher_uses_left <= 0:
        raise ApiError(
            "voucher_used_up", Said("The voucher has no uses left", "优待券已无剩余使用次数")
        )


def check_limits(facts: RedemptionFacts, grant: Grant, uses_in_period: int) -> None:
    """The limits as the counters stand in `facts`."""
    if facts.holder_limit_count is not None and uses_in_period >= facts.holder_limit_count:
        raise holder_limit_reached(facts)
    if facts.total_redemptions is not None and facts.redeemed_count >= facts.total_redemptions:
        raise ApiError(
            "offer_exhausted", Said("The offer has no redemptions left", "优惠已无剩余核销次数")
        )
    if facts.budget is not None and facts.spent + grant.budget_cost > facts.budget:
        raise budget_exhausted(facts, grant)


def limit_refusal(
    facts: RedemptionFacts, grant: Grant, uses_in_period: int, offer_status: str
) -> ApiError:
    """Why the database refused a redemption whose earlier rules all passed."""
    if offer_status != "active":
        return ApiError(
            "offer_inactive", Said(f"The offer is {offer_status}", f"优惠状态为 {offer_status}")
        )
    try:
        check_limits(facts, grant, uses_in_period)
    except ApiError as refusal:
        return refusal
    # The counters moved between the refusal and this read: still a limit.
    return ApiError("offer_exhausted", Said("The offer's limits were reached", "已达到优惠的限额"))


def holder_limit_reached(facts: RedemptionFacts) -> ApiError:
    period = facts.holder_limit_period
    when = "in total" if period == "ever" else f"per {period}"
    when_zh = "总共" if period == "ever" else f"每个 {period}"
    return ApiError(
        "holder_limit_reached",
        Said(
            f"The card holder may use this offer {facts.holder_limit_count} time(s) {when}",
            f"持证人{when_zh}可使用此优惠 {facts.holder_limit_count} 次",
        ),
    )


def budget_exhausted(facts: RedemptionFacts, grant: Grant) -> ApiError:
    left = max((facts.budget or 0) - facts.spent, 0)
    return ApiError(
        "budget_exhausted",
        Said(
            f"The offer's budget has {left} fen left; this discount needs {grant.budget_cost}",
            f"优惠预算剩余 {left} 分；本次优惠需要 {grant.budget_cost} 分",
        ),
    )


def check_offline_at(offline_at: datetime, now: datetime) -> None:
    """An offline redemption arrives within 72 hours of being made, and was not made in
    the future (a till's clock may run up to 5 minutes ahead)."""
    problem = offline_at_problem(offline_at, now)
    if problem is not None:
        raise problem


def offline_at_problem(offline_at: datetime, now: datetime) -> ApiError | None:
    """check_offline_at's refusal, or None."""
    if offline_at < now - OFFLINE_MAX_AGE:
        return validation_error(
            "offline_at",
            Said(
                "must be within the last 72 hours; older offline redemptions are not accepted",
                "必须在过去 72 小时之内；更早的离线核销不再受理",
            ),
        )
    if offline_at > now + OFFLINE_MAX_AHEAD:
        return validation_error(
            "offline_at",
            Said(
                "must not be in the future; check the till's clock",
                "不能晚于当前时间：请检查收银台的时钟",
            ),
        )
    return None


def judge_offline(
    facts: RedemptionFacts,
    purchase_amount: int,
    holder_period_uses: int,
    offline_at: datetime,
    tz: ZoneInfo,
) -> tuple[Grant, str | None]:
    """An offline redemption: what it granted, and the code of the first rule (RULE_ORDER)
    that would have refused it online at `offline_at`, or None (docs/rules.md).

    The discount was already given, so a broken rule does not refuse it: it is recorded
    with its conflict. Except the price: the till prices with the offer as the service
    does, and refuses a purchase below the minimum itself, so one that comes anyway is
    refused (below_min_purchase, or validation_error for a missing amount).
    `holder_period_uses`: the holder's uses in the period that holds `offline_at`."""
    granted = quote(facts.price_rule, purchase_amount)
    grant = Grant(granted, budget_cost(granted), holder_period_start(facts, offline_at, tz))
    try:
        judge(facts, purchase_amount, holder_period_uses, offline_at, tz)
    except ApiError as refusal:
        return grant, refusal.code
    return grant, None


def check_reversal(
    created_at: datetime, already_reversed: bool, now: datetime, window_days: int
) -> None:
    """A redemption is reversed once, within the reversal window."""
    if already_reversed:
        raise ApiError(
            "already_reversed", Said("The redemption has already been reversed", "此核销已被冲正")
        )
    if now - created_at > timedelta(days=window_days):
        raise ApiError(
            "reversal_window_closed",
            Said(
                f"Redemptions can be reversed for {window_days} days after they are made",
                f"核销只能在 {window_days} 天内冲正",
            ),
        )
