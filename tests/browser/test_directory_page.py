"""/directory in Debian's Chromium as a holder's phone shows it (docs/api.md): with scripts
off, search and filters work and numbers are tap-to-call; in both languages and in
large-text mode axe-core finds nothing serious; screenshots for people to look at."""

from __future__ import annotations

from typing import Any

from service.flows import partners as partners_flow
from tests.browser.conftest import OUTPUT, LiveApp
from tests.browser.test_till_and_wallet import axe_source, serious_violations  # noqa: F401
from tests.helpers import make_offer, make_partner

SHOTS = OUTPUT / "directory"
PHONE = {"width": 390, "height": 844}


def arrange(live_app: LiveApp) -> None:
    async def work(conn: Any) -> None:
        for name, category, region, phone in (
            ("区邮政分公司（目录）", "postal", "东城街道", "010-6401-2300"),
            ("康宁门诊部（目录）", "health", "北苑街道", "010-6404-1201"),
        ):
            partner = await make_partner(conn, name=name, category=category)
            await partners_flow.change(
                conn,
                None,
                partner,
                {"region": region, "public_phone": phone, "opening_hours": "周一至周六 8:00–17:00"},
            )
            await make_offer(conn, partner, title="持证优先", kind="service", nominal_value=500)

    live_app.run(work)


def test_the_directory_works_with_scripts_off_on_a_phone(
    browser: Any,
    live_app: LiveApp,
    axe_source: str,  # noqa: F811
) -> None:
    arrange(live_app)
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        base_url=live_app.url,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        java_script_enabled=False,
    )
    page = context.new_page()
    page.goto("/directory")
    assert page.locator("li.partner").count() >= 2
    call = page.locator('a.call[href="tel:01064012300"]')
    assert call.count() == 1
    box = call.bounding_box()
    assert box is not None and box["height"] >= 44  # a finger's target
    page.screenshot(path=str(SHOTS / "zh-phone.png"), full_page=True)
    page.fill("#q", "门诊")
    page.get_by_role("button", name="查找").click()
    assert page.url.endswith("/directory?q=%E9%97%A8%E8%AF%8A&category=&region=&holder_category=")
    names = page.locator("li.partner h2").all_inner_texts()
    assert names == ["康宁门诊部（目录）"]
    page.select_option("#category", "postal")
    page.fill("#q", "")
    page.get_by_role("button", name="查找").click()
    assert page.locator("li.partner h2").all_inner_texts() == ["区邮政分公司（目录）"]
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("li.partner h2").all_inner_texts() == ["区邮政分公司（目录）"]  # kept
    page.get_by_role("link", name="Large text").click()
    assert page.locator("html").get_attribute("class") == "large"
    page.screenshot(path=str(SHOTS / "en-phone-large.png"), full_page=True)
    context.close()

    problems = []
    for locale, query in (("zh-CN", ""), ("en-US", "?lang=en"), ("zh-CN", "?large=1")):
        context = browser.new_context(base_url=live_app.url, viewport=PHONE, locale=locale)
        page = context.new_page()
        page.goto("/directory" + query)
        if query == "?large=1":
            body = page.evaluate(
                "getComputedStyle(document.querySelector('li.partner p')).fontSize"
            )
            assert float(body.removesuffix("px")) >= 20
        problems += [f"{locale}{query}: {v}" for v in serious_violations(page, axe_source)]
        context.close()
    assert not problems, problems


def test_the_wallet_links_to_the_directory(browser: Any, live_app: LiveApp) -> None:
    context = browser.new_context(base_url=live_app.url, viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.goto("/wallet")
    page.get_by_role("link", name="哪里能用优待证").click()
    page.wait_for_url("**/directory")
    assert page.locator("h1").inner_text() == "哪里能用优待证"
    context.close()
