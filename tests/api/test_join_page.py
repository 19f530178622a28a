"""/join (docs/api.md): the application form as a page rendered by the server — Chinese and
English, a plain form POST with no script, the API's own rules and messages."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from aiohttp.test_utils import TestClient

from service.app import create_app
from tests.helpers import make_partner, make_staff, staff_sign_in

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form(**changes: Any) -> dict[str, str]:
    fields = {
        "name": "老兵饭店",
        "category": "catering",
        "contact_name": "王芳",
        "contact_phone": "010-6403 7700",
        "contact_email": "wang.fang@laobing.example",
        "address": "东城区和平里大街 8 号",
        "region": "东城街道",
        "public_phone": "",
        "opening_hours": "",
        "offer_idea": "堂食九折",
        "agree_to_terms": "true",
    }
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not None}


async def test_the_form_renders_in_chinese_and_english_without_scripts(
    client: TestClient,
) -> None:
    page = await client.get("/join")
    assert page.status == 200 and page.content_type == "text/html"
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    assert "<script" not in html
    assert '<html lang="zh-CN">' in html and "申请成为合作单位" in html
    assert '<form method="post" action="/join">' in html
    for name in ("name", "contact_phone", "contact_email", "offer_idea", "agree_to_terms"):
        assert f'name="{name}"' in html
    assert 'href="/pages/static/join.css?v=' in html
    english = await (await client.get("/join?lang=en")).text()
    assert '<html lang="en">' in english and "Apply to become a partner" in english
    by_header = await (await client.get("/join", headers={"Accept-Language": "en"})).text()
    assert '<html lang="en">' in by_header
    # The directory links to it.
    assert 'href="/join"' in await (await client.get("/directory")).text()
    css = await client.get(re.search(r'href="(/pages/static/join\.css[^"]*)"', html)[1])
    assert css.status == 200 and css.content_type == "text/css"


async def test_a_plain_form_post_applies_and_thanks_with_the_status_link(
    client: TestClient, db: asyncpg.Connection
) -> None:
    answer = await client.post("/join", data=form(public_phone="010-6403 7701"), headers=FORM)
    assert answer.status == 200 and answer.content_type == "text/html"
    assert answer.headers["Cache-Control"] == "no-store"
    html = await answer.text()
    assert "申请已提交" in html and "事务局将审核您的申请" in html and "<script" not in html
    link = unescape(re.search(r'<a href="([^"]*/join/status\?token=[^"]+)"', html)[1])
    row = await db.fetchrow("SELECT name, public_phone, status FROM partner_applications")
    assert dict(row) == {"name": "老兵饭店", "public_phone": "010-6403 7701", "status": "submitted"}
    status = await client.get(f"{urlsplit(link).path}?{urlsplit(link).query}")
    assert status.status == 200 and "审核中" in await status.text()

    english = await client.post(
        "/join", data=form(name="Old Soldier", contact_phone="13900000001", lang="en"), headers=FORM
    )
    text = await english.text()
    assert "Application received" in text and "/join/status?token=" in text


async def test_the_form_shows_the_apis_messages_in_the_visitors_language(
    client: TestClient, db: asyncpg.Connection
) -> None:
    bad = form(name="老兵\u202e饭店", contact_email="nope", agree_to_terms=None)
    api = await client.post(
        "/v1/partner-applications",
        json={**bad, "agree_to_terms": False},
        headers={"Accept-Language": "zh-CN"},
    )
    api_en = await client.post(
        "/v1/partner-applications",
        json={**bad, "agree_to_terms": False},
        headers={"Accept-Language": "en"},
    )
    messages_zh = {e["field"]: e["message"] for e in (await api.json())["errors"]}
    messages_en = {e["field"]: e["message"] for e in (await api_en.json())["errors"]}
    assert set(messages_zh) == {"name", "contact_email", "agree_to_terms"}

    page = await client.post("/join", data=bad, headers=FORM)
    assert page.status == 200
    html = unescape(await page.text())
    for message in messages_zh.values():
        assert message in html
    assert 'aria-invalid="true"' in html
    assert 'value="nope"' in html  # what the visitor typed stays in the form
    assert await db.fetchval("SELECT count(*) FROM partner_applications") == 0

    page_en = await client.post(
        "/join", data={**bad, "lang": "en"}, headers={**FORM, "Accept-Language": "zh"}
    )
    html_en = unescape(await page_en.text())
    for message in messages_en.values():
        assert message in html_en
    assert messages_zh["contact_email"] not in html_en


async def test_the_form_answers_duplicates_and_the_throttle_as_the_api_does(
    client: TestClient, db: asyncpg.Connection
) -> None:
    await make_partner(db, name="老兵饭店")
    duplicate = unescape(await (await client.post("/join", data=form(), headers=FORM)).text())
    assert "已有同名或同一联系电话的合作商户或待审申请" in duplicate
    assert "申请已提交" not in duplicate
    for n in range(4):
        fields = form(name=f"店{n}", contact_phone=f"1390000010{n}")
        assert "申请已提交" in await (await client.post("/join", data=fields, headers=FORM)).text()
    sixth = await client.post(
        "/join", data=form(name="店9", contact_phone="13900000109", lang="en"), headers=FORM
    )
    assert "Too many applications from this address" in await sixth.text()
    api = await client.post(
        "/v1/partner-applications",
        json={**form(name="店8", contact_phone="13900000108"), "agree_to_terms": True},
    )
    assert api.status == 429  # one count for the form and the API


async def test_the_form_refuses_other_media_types_and_survives_garbage(
    client: TestClient,
) -> None:
    assert (await client.post("/join", json=form())).status == 415
    garbage = await client.post("/join", data=b"%FF%FE=%00&name=%E9", headers=FORM)
    assert garbage.status == 200 and "请修改以下内容" in await garbage.text()


async def test_the_region_is_a_choice_when_the_bureau_has_a_list(
    database_url: str, settings, aiohttp_client
) -> None:
    client = await aiohttp_client(
        create_app(settings.with_overrides(regions=("东城街道", "西城街道")), database_url)
    )
    html = await (await client.get("/join")).text()
    assert '<select id="region" name="region" required>' in html
    assert '<option value="西城街道">西城街道</option>' in html
    refused = unescape(
        await (await client.post("/join", data=form(region="火星"), headers=FORM)).text()
    )
    assert "必须是本局所列地区之一" in refused


async def test_a_console_session_in_the_same_browser_changes_nothing(
    client: TestClient, db: asyncpg.Connection
) -> None:
    """A route anyone may call ignores the staff cookie and its CSRF token (docs/staff.md)."""
    session = await staff_sign_in(client, (await make_staff(db, "bureau_admin")).email)
    headers = {**FORM, "Cookie": session["Cookie"], "X-CSRF-Token": "wrong"}
    bad = await client.post("/join", data=form(name=""), headers=headers)
    assert bad.status == 200 and "请修改以下内容" in await bad.text()
    good = await client.post("/join", data=form(), headers=headers)
    assert good.status == 200 and "申请已提交" in await good.text()
