"""GET /v1/reports/statement (docs/ledger.md): a signed statement whose figures are the summary's
and the discounts report's, fen for fen, over random ledgers, and which an auditor
verifies with the JWKS and the exported entries alone."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import asyncpg
import jwt
import pytest
from aiohttp.test_utils import TestClient

from service.domain.categories import HOLDER_CATEGORIES
from service.domain.reports import MEASURES
from service.domain.statement import verify
from tests.helpers import Till, make_holder, make_voucher, record_redemption, record_reversal


async def statement_of(client: TestClient, admin: dict, query: str) -> tuple[str, dict]:
    answer = await client.get(f"/v1/reports/statement?{query}", headers=admin)
    assert answer.status == 200, await answer.text()
    signed = (await answer.json())["statement"]
    return signed, jwt.decode(signed, options={"verify_signature": False})


async def exported(client: TestClient, admin: dict) -> list[str]:
    lines, cursor = [], None
    while True:
        query = "limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(f"/v1/ledger/entries?{query}", headers=admin)).json()
        lines += [item["leaf"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            return lines


async def a_random_ledger(
    db: asyncpg.Connection, settings, rng: random.Random, around: datetime
) -> None:
    """Redemptions and reversals at random instants within two days of `around` (a
    month's first local midnight), by holders of every category, at three partners."""
    tills = [await Till(db, settings).open(offer={"uses_per_voucher": 1000}) for _ in range(3)]
    vouchers = []
    for category in HOLDER_CATEGORIES:
        for till in tills:
            holder = await make_holder(db, category=category)
            vouchers.append(await make_voucher(db, settings, holder, till.offer_id))
    redemptions = []
    for _ in range(rng.randint(10, 30)):
        at = around + timedelta(seconds=rng.randint(-2 * 86_400, 2 * 86_400))
        purchase = rng.randint(1, 50_000)
        offline = rng.random() < 0.3  # a till offline sent it later, perhaps in conflict
        redemptions.append(
            (
                at,
                await record_redemption(
                    db,
                    settings,
                    rng.choice(vouchers),
                    at=at,
                    purchase_amount=purchase,
                    discount_amount=rng.randint(0, purchase),
                    offline_at=at - timedelta(hours=rng.randint(1, 70)) if offline else None,
                    conflict=rng.choice([None, "voucher_used_up"]) if offline else None,
                ),
            )
        )
    for at, redemption in rng.sample(redemptions, k=len(redemptions) // 4):
        await record_reversal(
            db, settings, redemption, at=at + timedelta(seconds=rng.randint(1, 86_400))
        )


@pytest.mark.parametrize("seed", range(4))
async def test_the_statements_figures_are_the_reports_and_verify_from_the_entries(
    client: TestClient, db: asyncpg.Connection, settings, admin, seed: int
) -> None:
    rng = random.Random(seed)
    tz = settings.timezone
    month = date(2026, rng.randint(2, 11), 1)
    around = datetime(month.year, month.month, 1, tzinfo=tz).astimezone(UTC)
    await a_random_ledger(db, settings, rng, around)
    last = month - timedelta(days=1)
    period = (
        f"from={last.replace(day=1)}&to={last}"
        if seed % 2
        else f"from={month}&to={month + timedelta(days=rng.randint(0, 20))}"
    )

    signed, claims = await statement_of(client, admin, period)
    summary = await (await client.get(f"/v1/reports/summary?{period}", headers=admin)).json()
    names = ("redemptions", "reversals", "discount_total", "holders", "vouchers_issued")
    for name in (*names, "offline", "conflicts"):
        assert claims[name] == summary[name], name
    assert claims["partners"] == summary["partners"]
    by_category = await (
        await client.get(f"/v1/reports/discounts?group_by=category&{period}", headers=admin)
    ).json()
    assert claims["purchase_total"] == by_category["totals"]["purchase_total"]
    assert claims["by_holder_category"] == {
        row["category"]: {m: row[m] for m in MEASURES} for row in by_category["rows"]
    }
    by_partner = await (
        await client.get(f"/v1/reports/discounts?group_by=partner&{period}", headers=admin)
    ).json()
    assert [(row["partner_id"], row["discount_total"]) for row in claims["by_partner"]] == [
        (row["partner_id"], row["discount_total"]) for row in by_partner["rows"]
    ]
    assert claims["final"] is True  # every period of 2026 before December is over

    jwks = await (await client.get("/.well-known/jwks.json")).text()
    entries = await exported(client, admin)
    verdict = verify(signed, jwks, entries)
    assert verdict.verified, verdict.message
    assert verdict.message.startswith("statement verified")
    assert claims["log"]["size"] == len(entries)


async def test_a_period_not_yet_over_is_stated_as_of_now_and_not_final(
    client: TestClient, db: asyncpg.Connection, settings, admin
) -> None:
    till = await Till(db, settings).open()
    await record_redemption(db, settings, till.voucher_id, at=datetime.now(UTC))
    this_year = datetime.now(settings.timezone).year
    _, claims = await statement_of(client, admin, f"year={this_year}")
    assert claims["final"] is False and claims["redemptions"] == 1
    assert claims["log"] == {
        "size": 1,
        "root": claims["log"]["root"],
        "first_index": 0,
        "last_index": 0,
    }
    checkpoint = await (await client.get("/v1/ledger/checkpoint", headers=admin)).json()
    assert checkpoint["size"] == 1 and checkpoint["root"] == claims["log"]["root"]
    _, past = await statement_of(client, admin, f"year={this_year - 1}")
    assert past["final"] is True and past["redemptions"] == 0
    assert past["log"]["first_index"] is None


async def test_a_changed_entry_or_figure_is_named(
    client: TestClient, db: asyncpg.Connection, settings, admin
) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 1000, "uses_per_voucher": 10}
    )
    for _ in range(3):
        await record_redemption(db, settings, till.voucher_id, at=datetime.now(UTC))
    signed, _ = await statement_of(client, admin, "")
    jwks = await (await client.get("/.well-known/jwks.json")).text()
    entries = await exported(client, admin)
    assert verify(signed, jwks, [*entries, '{"later":"ignored"}']).verified
    forged = entries[1].replace('"discount_amount":1000', '"discount_amount":100')
    assert forged != entries[1]
    verdict = verify(signed, jwks, [entries[0], forged, entries[2]])
    assert not verdict.verified and "root" in verdict.message
    spaced = entries[2].replace(",", ", ", 1)
    assert verify(signed, jwks, [entries[0], entries[1], spaced]).message == (
        "entry 2: not in canonical form"
    )
    assert "holds 2 entries" in verify(signed, jwks, entries[:2]).message
    other_jwks = '{"keys": []}'
    assert verify(signed, other_jwks, entries).message.startswith("signature:")
