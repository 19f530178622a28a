"""/directory (docs/api.md): the directory as a page rendered by the server — the HTML holds
the partners, works without scripts, and stays light for a hundred partners."""

from __future__ import annotations

import re

import asyncpg
from aiohttp.test_utils import TestClient

from service.flows import partners as partners_flow
from tests.helpers import make_offer, make_partner


async def test_the_page_holds_the_partners_their_numbers_and_terms_without_scripts(
    client: TestClient, db: asyncpg.Connection
) -> None:
    shop = await make_partner(db, name="老兵饭店", category="catering")
    await partners_flow.change(
        db,
        None,
        shop,
        {
            "public_phone": "010-6403 7700",
            "opening_hours": "每日 11:00–21:00",
            "region": "东城街道",
        },
    )
    await make_offer(db, shop, title="堂食九折", percent_bp=1000, min_purchase=1000)

    page = await client.get("/directory")
    assert page.status == 200 and page.content_type == "text/html"
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    assert "<script" not in html  # nothing to run: it works with scripts off
    assert "老兵饭店" in html and 'href="tel:01064037700"' in html
    assert "满¥10可用，9折，所有持证人可用" in html  # the service's own words
    assert re.search(r'<html lang="zh-CN">', html)

    english = await (await client.get("/directory?lang=en&large=1")).text()
    assert '<html lang="en" class="large">' in english
    assert "10% off purchases of ¥10 or more, for every card holder" in english
    by_header = await (await client.get("/directory", headers={"Accept-Language": "en"})).text()
    assert '<html lang="en">' in by_header

    searched = await (await client.get("/directory?q=%E9%A5%AD%E5%BA%97")).text()  # 饭店
    assert "老兵饭店" in searched
    nothing = await (await client.get("/directory?q=zzz&lang=en")).text()
    assert "No partner found." in nothing and "老兵饭店" not in nothing
    assert (await client.get("/directory?category=spaceport")).status == 422


async def test_the_first_load_for_a_hundred_partners_is_under_60_kb(
    client: TestClient, db: asyncpg.Connection
) -> None:
    for index in range(100):
        partner = await make_partner(
            db, name=f"合作单位{index:03d}号老字号饭庄", category="catering"
        )
        await partners_flow.change(
            db,
            None,
            partner,
            {
                "public_phone": "010-6403-7700",
                "opening_hours": "每日 11:00–14:00，17:00–21:00",
                "address": "建设路 45 号",
                "region": "东城街道",
            },
        )
        await make_offer(
            db,
            partner,
            title="堂食九折",
            percent_bp=1000,
            max_discount=5000,
            min_purchase=1000,
            eligible_categories=["veteran", "martyr_family"],
        )
    html = await (await client.get("/directory")).read()
    assert html.count(b'class="partner"') == 100
    style = re.search(rb'href="(/pages/static/directory\.css[^"]*)"', html)
    assert style is not None
    css = await (await client.get(style.group(1).decode())).read()
    total = len(html) + len(css)
    assert total < 60_000, f"first load {total} bytes"
