"""Claiming a voucher and when it expires (docs/api.md, docs/pages.md), the staff second factor and
PIN hashing off the event loop. The clock and the programme time zone are passed in."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pyotp
import pytest

from service.domain import pins, totp
from service.domain.errors import ApiError
from service.domain.reports import MEASURES, totals
from service.domain.vouchers import Eligibility, check_claim, check_usable_now, voucher_expiry

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: 23:30 in Shanghai on 2025-06-10 is still 2025-06-10 15:30 UTC.
NOW = datetime(2025, 6, 10, 15, 30, tzinfo=UTC)

OPEN = Eligibility(
    holder_status="active",
    holder_category="veteran",
    card_valid_until=date(2025, 6, 10),
    offer_status="active",
    offer_starts_at=NOW - timedelta(days=1),
    offer_ends_at=NOW + timedelta(days=1),
    eligible_categories=("veteran", "senior"),
    partner_status="active",
)


def refusal(facts: Eligibility, now: datetime = NOW) -> str:
    with pytest.raises(ApiError) as refused:
        check_claim(facts, now, SHANGHAI)
    return refused.value.code


def test_an_eligible_holder_may_claim_on_the_last_local_day_of_the_card() -> None:
    check_claim(OPEN, NOW, SHANGHAI)
    check_claim(replace(OPEN, eligible_categories=()), NOW, SHANGHAI)  # open to all


def test_claims_are_refused_in_the_specs_order() -> None:
    assert refusal(replace(OPEN, partner_status="suspended", holder_status="revoked")) == (
        "partner_inactive"
    )
    assert refusal(replace(OPEN, holder_status="suspended", offer_status="paused")) == (
        "holder_inactive"
    )
    assert refusal(replace(OPEN, holder_category="student", offer_status="paused")) == (
        "holder_ineligible"
    )
    assert refusal(replace(OPEN, offer_status="paused")) == "offer_inactive"


def test_a_card_is_past_valid_until_from_local_midnight() -> None:
    just_after = datetime(2025, 6, 10, 16, 0, tzinfo=UTC)  # 00:00 on the 11th in Shanghai
    assert refusal(OPEN, just_after) == "holder_inactive"


def test_an_offer_claims_only_inside_its_window() -> None:
    assert refusal(replace(OPEN, offer_starts_at=NOW + timedelta(seconds=1))) == "offer_inactive"
    check_claim(replace(OPEN, offer_starts_at=NOW), NOW, SHANGHAI)
    assert refusal(replace(OPEN, offer_ends_at=NOW)) == "offer_inactive"
    check_claim(replace(OPEN, offer_ends_at=NOW + timedelta(seconds=1)), NOW, SHANGHAI)
    check_claim(replace(OPEN, offer_starts_at=None, offer_ends_at=None), NOW, SHANGHAI)


def test_a_voucher_lasts_to_the_end_of_the_local_day_its_days_later() -> None:
    # Claimed at 23:30 on 10 June in Shanghai: 3 days → the end of 13 June local time.
    assert voucher_expiry(NOW, 3, None, SHANGHAI) == datetime(2025, 6, 13, 16, 0, tzinfo=UTC)
    assert voucher_expiry(NOW, 0, None, SHANGHAI) == datetime(2025, 6, 10, 16, 0, tzinfo=UTC)


def test_a_voucher_without_valid_days_lasts_thirty_days() -> None:
    assert voucher_expiry(NOW, None, None, SHANGHAI) == datetime(2025, 7, 10, 16, 0, tzinfo=UTC)


def test_a_voucher_never_outlives_its_offer() -> None:
    ends = datetime(2025, 6, 12, 4, 0, tzinfo=UTC)
    assert voucher_expiry(NOW, 3, ends, SHANGHAI) == ends
    later = datetime(2025, 6, 20, tzinfo=UTC)
    assert voucher_expiry(NOW, 3, later, SHANGHAI) == datetime(2025, 6, 13, 16, 0, tzinfo=UTC)


# --- report totals --------------------------------------------------------------------


def test_report_totals_sum_every_measure_exactly() -> None:
    rows = [dict.fromkeys(MEASURES, 1), {m: 10**15 + i for i, m in enumerate(MEASURES)}]
    assert totals(rows) == {m: 10**15 + i + 1 for i, m in enumerate(MEASURES)}
    assert totals([]) == dict.fromkeys(MEASURES, 0)


# --- the staff second factor (RFC 6238) ------------------------------------------------


def test_a_new_secret_is_160_bits_of_base32() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert secret != totp.new_secret()


def test_the_enrolment_uri_names_the_account_issuer_and_parameters() -> None:
    uri = totp.otpauth_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "li@example.cn")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parts.path == "/youdai:li%40example.cn"
    query = parse_qs(parts.query)
    assert query["secret"] == ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"]
    assert query["issuer"] == ["youdai"]
    # pyotp leaves out the defaults (6 digits, 30 s); an authenticator reads them so.
    assert query.get("digits", ["6"]) == ["6"]
    assert query.get("period", ["30"]) == ["30"]
    code = pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").at(NOW)
    assert totp.accepted_step("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", code, NOW, None) is not None


# --- PINs off the event loop -------------------------------------------------------------


async def test_pins_hash_and_verify_off_the_event_loop() -> None:
    stored = await pins.hash_pin_off_loop("246810")
    assert stored.startswith("$argon2id$")
    assert await pins.verify_pin_off_loop(stored, "246810") is True
    assert await pins.verify_pin_off_loop(stored, "246811") is False
    assert asyncio.get_running_loop().is_running()


def test_a_malformed_pin_hash_never_matches_and_is_rehashed() -> None:
    assert pins.verify_pin("not a hash", "246810") is False
    assert pins.needs_rehash("not a hash") is True
    assert pins.needs_rehash(pins.hash_pin("246810")) is False


def _not_usable(facts: Eligibility, status: str = "active", uses_left: int = 1) -> str | None:
    try:
        check_usable_now(facts, status, uses_left, NOW + timedelta(hours=1), NOW, SHANGHAI)
    except ApiError as refused:
        return refused.code
    return None


def test_a_voucher_is_usable_now_only_when_no_rule_of_the_till_would_refuse_it() -> None:
    """docs/api.md: no token for a voucher the till would refuse; the first rule in the
    till's order (partner, voucher, holder, offer) names why."""
    assert _not_usable(OPEN) is None
    assert _not_usable(replace(OPEN, offer_status="paused")) == "offer_inactive"
    assert _not_usable(replace(OPEN, offer_status="ended")) == "offer_inactive"
    assert _not_usable(replace(OPEN, offer_ends_at=NOW)) == "offer_inactive"
    assert _not_usable(replace(OPEN, holder_category="other")) == "holder_ineligible"
    assert _not_usable(replace(OPEN, holder_status="suspended")) == "holder_inactive"
    assert _not_usable(OPEN, status="revoked") == "voucher_revoked"
    assert _not_usable(OPEN, status="used_up", uses_left=0) == "voucher_used_up"
    # Everything broken at once: the partner first, then the voucher, then the holder.
    broken = replace(
        OPEN, partner_status="suspended", offer_status="paused", holder_status="revoked"
    )
    assert _not_usable(broken, status="revoked") == "partner_inactive"
    assert (
        _not_usable(replace(broken, partner_status="active"), status="revoked") == "voucher_revoked"
    )
    assert _not_usable(replace(broken, partner_status="active")) == "holder_inactive"
