"""GET /v1/directory (docs/api.md): anyone learns where a card is welcome — active, listed
partners with an offer active now, each offer with its terms in words — and nothing of
the programme's workings; cached a minute, with an ETag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp.test_utils import TestClient

from service.flows import partners as partners_flow
from tests.helpers import make_offer, make_partner

PARTNER_FIELDS = {
    "id",
    "name",
    "category",
    "region",
    "address",
    "public_phone",
    "opening_hours",
    "offers",
}
OFFER_FIELDS = {"id", "title", "kind", "terms", "eligible_categories", "valid_through"}


async def partner(db: asyncpg.Connection, name: str, status: str = "active", **profile) -> str:
    partner_id = await make_partner(db, name=name, category="catering", status=status)
    await partners_flow.change(
        db,
        None,
        partner_id,
        {
            "region": "东城街道",
            "public_phone": "010-6403-7700",
            "address": "建设路 45 号",
            **profile,
        },
    )
    return partner_id


async def listed(client: TestClient, query: str = "", **headers: str) -> list[dict]:
    answer = await client.get(f"/v1/directory?{query}", headers=headers)
    assert answer.status == 200, await answer.text()
    return (await answer.json())["items"]


async def test_only_active_listed_partners_with_an_offer_active_now_are_shown(
    client: TestClient, db: asyncpg.Connection
) -> None:
    now = datetime.now(UTC)
    shown = await partner(db, "老兵饭店", opening_hours="每日 11:00–21:00")
    offer = await make_offer(
        db,
        shown,
        title="堂食九折",
        percent_bp=1000,
        max_discount=5000,
        min_purchase=1000,
        eligible_categories=["veteran"],
        ends_at=datetime(2099, 1, 1, 16, tzinfo=UTC),
        budget=100_000,
        total_redemptions=500,
    )
    await make_offer(db, shown, title="暂停的优惠", status="paused")
    await make_offer(db, await partner(db, "不公开的店", listed=False), title="x")
    await make_offer(db, await partner(db, "暂停合作的店", status="suspended"), title="x")
    ended = await partner(db, "过期的店")
    await make_offer(db, ended, title="x", starts_at=now - timedelta(days=9), ends_at=now)
    later = await partner(db, "未开始的店")
    await make_offer(db, later, title="x", starts_at=now + timedelta(days=1))

    # Anyone: no key needed, and a key that means nothing here is ignored.
    for headers in ({}, {"Authorization": "Bearer yd_nonsense"}):
        items = await listed(client, **headers)
        assert [item["name"] for item in items] == ["老兵饭店"]
    [item] = items
    assert set(item) == PARTNER_FIELDS  # never contacts, counters, budgets, keys, holders
    assert (item["region"], item["public_phone"], item["opening_hours"]) == (
        "东城街道",
        "010-6403-7700",
        "每日 11:00–21:00",
    )
    [shown_offer] = item["offers"]
    assert set(shown_offer) == OFFER_FIELDS
    assert shown_offer["id"] == offer
    assert shown_offer["terms"] == {
        "zh": "满¥10可用，9折，最多减¥50，有效期至2099年1月1日，限退役军人使用",
        "en": "10% off purchases of ¥10 or more, at most ¥50 off, valid through 1 Jan 2099, "
        "for veterans",
    }
    assert shown_offer["valid_through"] == "2099-01-01"
    assert shown_offer["eligible_categories"] == ["veteran"]


async def test_filters_by_category_region_holder_category_and_words(
    client: TestClient, db: asyncpg.Connection
) -> None:
    restaurant = await partner(db, "鸿福楼酒家")
    await make_offer(db, restaurant, title="宴席八八折", eligible_categories=["veteran"])
    clinic = await make_partner(db, name="康宁门诊部", category="health")
    await partners_flow.change(db, None, clinic, {"region": "北苑街道"})
    await make_offer(db, clinic, title="优先就诊", kind="service", nominal_value=1000)

    async def names(query: str) -> list[str]:
        return [item["name"] for item in await listed(client, query)]

    assert await names("") == ["鸿福楼酒家", "康宁门诊部"]  # in a stable order: the ids'
    assert restaurant < clinic
    assert await names("category=health") == ["康宁门诊部"]
    assert await names("region=%E4%B8%9C%E5%9F%8E%E8%A1%97%E9%81%93") == ["鸿福楼酒家"]
    assert await names("holder_category=martyr_family") == ["康宁门诊部"]
    assert await names("q=%E5%AE%B4%E5%B8%AD") == ["鸿福楼酒家"]  # an offer's title: 宴席
    assert await names("q=%E9%97%A8%E8%AF%8A") == ["康宁门诊部"]  # a name: 门诊
    assert await names("q=nothing-like-it") == []
    bad = await client.get("/v1/directory?category=spaceport")
    assert bad.status == 422 and (await bad.json())["code"] == "validation_error"


async def test_it_is_cached_a_minute_and_answers_304_to_its_etag(
    client: TestClient, db: asyncpg.Connection
) -> None:
    shop = await partner(db, "兴隆面馆")
    await make_offer(db, shop, title="面食九五折", percent_bp=500)
    first = await client.get("/v1/directory")
    assert first.headers["Cache-Control"] == "public, max-age=60"
    etag = first.headers["ETag"]
    again = await client.get("/v1/directory", headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag
    assert await again.read() == b""
    await partners_flow.change(db, None, shop, {"opening_hours": "每日 6:30–20:00"})
    changed = await client.get("/v1/directory", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
