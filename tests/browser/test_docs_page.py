"""/docs in a real browser: Swagger UI renders the offer bodies, one schema per kind."""

from __future__ import annotations

import json
from typing import Any

import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is missing: pip install -e '.[test]'"
)
expect = sync_api.expect


def open_request_body(page: Any, operation_id: str) -> Any:
    operation = page.locator(f"#operations-offers-{operation_id}")
    operation.locator(".opblock-summary").click()
    return operation.locator(".opblock-section-request-body")


def test_the_offer_operations_show_an_example_and_a_schema_per_kind(till: Any) -> None:
    till.goto("/docs")
    create = open_request_body(till, "post_create_offer")
    example = json.loads(create.locator(".highlight-code").inner_text())
    # Swagger UI leaves a discriminator out of the examples it makes up: this one is ours.
    assert example["kind"] == "amount_off"
    assert example["amount_off"] == 1000
    create.locator("button[data-name=model]").click()
    for kind in ("PercentOff", "AmountOff", "FixedPrice", "Service"):
        expect(create.get_by_text(f"OfferCreate{kind}", exact=True)).to_be_visible()

    update = open_request_body(till, "patch_update_offer")
    assert json.loads(update.locator(".highlight-code").inner_text()) == {"status": "active"}
    update.locator("button[data-name=model]").click()
    expect(update.get_by_text("OfferUpdateByKind", exact=True)).to_be_visible()
    expect(update.get_by_text("OfferUpdateServiceFields", exact=True)).to_be_visible()
