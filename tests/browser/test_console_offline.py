"""The console's part of the offline till (docs/rules.md, "Offline redemptions"): the
bureau finds the redemptions recorded with a conflict, each marked with when the till
made it and the rule it broke, in the service's words."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.browser.conftest import LiveApp
from tests.browser.test_console import (  # fixtures and helpers of the console's tests
    MESSAGES,
    admin_key,
    call,
    claimed_token,
    open_desk,
    sign_in,
    staff,
    ui,
    unique,
)
from tests.helpers import make_offer, make_partner

__all__ = ["admin_key", "open_desk"]  # fixtures, used by name

expect = pytest.importorskip("playwright.sync_api").expect


def test_the_bureau_lists_offline_conflicts_with_the_rule_they_broke(
    live_app: LiveApp, open_desk: Any, admin_key: str
) -> None:
    partner = live_app.run(lambda conn: make_partner(conn, name=unique("乡村服务站")))
    offer = live_app.run(lambda conn: make_offer(conn, partner, title=unique("理发九折")))
    status, till = call(
        live_app,
        "POST",
        f"/v1/partners/{partner}/keys",
        {"role": "scanner", "label": "一号"},
        admin_key,
    )
    assert status == 201, till
    token = claimed_token(live_app, offer)
    made = datetime.now(UTC).isoformat()
    answers = []
    for offline_at in (None, made):  # online first; then the till's queue, offline
        body = {"token": token, "purchase_amount": 3000}
        if offline_at:
            body["offline_at"] = offline_at
        answers.append(
            call(
                live_app,
                "POST",
                "/v1/redemptions",
                body,
                till["key"],
                {"Idempotency-Key": unique("q")},
            )
        )
    assert [status for status, _ in answers] == [201, 201]
    assert answers[1][1]["conflict"] == "voucher_used_up"

    page = open_desk()
    sign_in(page, staff(live_app, "bureau_admin"))
    page.get_by_role("link", name=ui("nav_redemptions")).click()
    page.select_option("#f-partner_id", partner)
    page.select_option("#f-conflict", "true")
    page.get_by_role("button", name=ui("apply_filters")).click()
    expect(page).to_have_url(re.compile("conflict=true"))
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    rule = MESSAGES["problems"]["voucher_used_up"]["zh"]
    expect(rows.first.locator(".status-conflict")).to_have_text(ui("conflict_badge", rule=rule))
    expect(rows.first).to_contain_text(ui("offline_made", time="").strip())
    page.select_option("#f-conflict", "")
    page.select_option("#f-offline", "false")
    page.get_by_role("button", name=ui("apply_filters")).click()
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".status-conflict")).to_have_count(0)
