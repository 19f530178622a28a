"""The till's pricing vectors (tests/browser/pricing_vectors.json) are the service's own
pricing: the committed file is what the generator writes now."""

import json

from tests.browser import pricing_vectors


def test_the_committed_pricing_vectors_are_current() -> None:
    committed = pricing_vectors.PATH.read_text(encoding="utf-8")
    assert committed == pricing_vectors.text(), (
        "tests/browser/pricing_vectors.json is stale: run python -m tests.browser.pricing_vectors"
    )


def test_the_vectors_cover_every_kind_caps_minimums_and_refusals() -> None:
    cases = json.loads(pricing_vectors.PATH.read_text(encoding="utf-8"))
    assert len(cases) >= 300
    assert {case["offer"]["kind"] for case in cases} == {
        "percent_off",
        "amount_off",
        "fixed_price",
        "service",
    }
    assert {case.get("refusal") for case in cases} == {
        None,
        "below_min_purchase",
        "validation_error",
    }
    capped = [
        case
        for case in cases
        if case["offer"]["max_discount"]
        and case.get("discount_amount") == case["offer"]["max_discount"]
    ]
    assert capped
    # Exact halves of a fen, rounded up (1500 bp of 10 fen = 1.5 -> 2).
    halves = [
        case
        for case in cases
        if case["offer"]["kind"] == "percent_off"
        and "discount_amount" in case
        and case["purchase_amount"] * case["offer"]["percent_bp"] % 10_000 == 5_000
    ]
    assert halves
    for case in cases:
        if "discount_amount" in case and case["offer"]["kind"] != "service":
            assert case["discount_amount"] + case["payable_amount"] == case["purchase_amount"]
