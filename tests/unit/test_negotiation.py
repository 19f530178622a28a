"""The one parser of Accept and Accept-Language (service/domain/negotiation.py)."""

from __future__ import annotations

import pytest

from service.domain.negotiation import media_quality, preferred_language, weighted


def test_a_weighted_list_keeps_its_order_and_drops_other_parameters() -> None:
    assert weighted("Text/HTML;level=1, en-GB;q=0.8 ,, */*;q=0") == [
        ("text/html", 1.0),
        ("en-gb", 0.8),
        ("*/*", 0.0),
    ]
    assert weighted(None) == [] == weighted("")


@pytest.mark.parametrize(
    ("raw", "q"),
    [("1", 1.0), ("1.000", 1.0), ("0.5", 0.5), ("0.125", 0.125), ("0", 0.0), ("0.", 0.0)],
)
def test_weights_as_rfc_9110_writes_them(raw: str, q: float) -> None:
    assert weighted(f"a;q={raw}") == [("a", q)]


@pytest.mark.parametrize("raw", ["2", "1.5", "-1", "0.1234", "nan", "inf", "abc", "", "1e0"])
def test_a_malformed_weight_counts_as_zero_never_as_a_preference(raw: str) -> None:
    assert weighted(f"a;q={raw}") == [("a", 0.0)]


def test_the_most_specific_media_range_gives_the_weight() -> None:
    assert media_quality("text/csv", "*/*;q=0.9, text/*;q=0.2, text/csv;q=0.5") == 0.5
    assert media_quality("text/csv", "*/*;q=0.9, text/*;q=0.2") == 0.2
    assert media_quality("text/csv", "*/*;q=0.9") == 0.9
    assert media_quality("text/csv", "application/json") == 0.0


def test_the_language_is_the_heaviest_we_have_else_the_default() -> None:
    ours = {"zh": "zh-CN", "en": "en"}
    assert preferred_language("fr;q=1, en-US;q=0.4", ours, "zh-CN") == "en"
    assert preferred_language("en;q=0.3, zh-TW;q=0.3", ours, "zh-CN") == "en"  # order breaks ties
    assert preferred_language("en;q=2", ours, "zh-CN") == "zh-CN"  # malformed weight
    assert preferred_language("*, en;q=0.5", ours, "zh-CN") == "zh-CN"
    assert preferred_language("en_US", ours, "zh-CN") == "zh-CN"  # not a language range
