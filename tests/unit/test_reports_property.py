"""Rule 4, by property: for random redemptions and reversals — many on the last second and
the first second of a month or a year in programme time, many in the hours whose UTC date
is the day before the local one — every grouping of the discount report over any period
equals the ledger rows summed here in Python, and reconciliation finds nothing — with
any number of the rows folded into the rollups by the sequencer and the rest not yet
(migration 0021: reports add the rows above the watermark to the rollups).

The rows are written through the ledger's own statements (service/db/redemptions.py),
at chosen instants. The expected sums read the
ledger tables only, never a rollup, and place each row by converting its `created_at`
with zoneinfo — not by its stored `local_day`.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from service.db import ledger as ledger_db
from service.db.reconcile import mismatches
from service.domain.categories import HOLDER_CATEGORIES
from tests.helpers import (
    fold_all,
    make_holder,
    make_offer,
    make_partner,
    make_voucher,
    record_redemption,
    record_reversal,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
GROUPS = ("partner", "offer", "category", "month")
MEASURES = ("redemptions", "reversals", "purchase_total", "discount_total", "offline", "conflicts")

#: First days of the months the generated rows fall in (year boundary in the middle).
MONTH_STARTS = [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1),
                date(2026, 3, 1), date(2026, 4, 1)]  # fmt: skip


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=SHANGHAI).astimezone(UTC)


#: 00:00:00 on the first day of a month and 23:59:59 on the day before, programme time.
boundary_instants = st.sampled_from(MONTH_STARTS).flatmap(
    lambda first: st.sampled_from(
        [_local(first, time(0, 0, 0)), _local(first - timedelta(days=1), time(23, 59, 59))]
    )
)
#: 00:00–07:59 local: the UTC date is still the day before.
early_local_instants = st.builds(
    lambda day, seconds: _local(day, time(0)) + timedelta(seconds=seconds),
    st.dates(min_value=date(2025, 11, 1), max_value=date(2026, 4, 30)),
    st.integers(min_value=0, max_value=8 * 3600 - 1),
)
any_instants = st.datetimes(
    min_value=datetime(2025, 11, 1), max_value=datetime(2026, 4, 30), timezones=st.just(UTC)
)
instants = st.one_of(boundary_instants, early_local_instants, any_instants)


@dataclass(frozen=True)
class Sale:
    voucher: int
    at: datetime
    purchase: int
    discount: int
    refunded_at: datetime | None
    #: None: made online; else made offline (an hour before it arrived), with a conflict
    #: or not ("" for none).
    offline: str | None = None


sales = st.builds(
    lambda voucher, at, purchase, share, refund, offline: Sale(
        voucher,
        at,
        purchase,
        purchase * share // 100,
        None if refund is None else max(at, refund),
        offline,
    ),
    st.integers(min_value=0, max_value=100),
    instants,
    st.integers(min_value=1, max_value=10_000_000),
    st.integers(min_value=0, max_value=100),
    st.none() | instants,
    st.sampled_from([None, None, "", "voucher_used_up"]),
)
periods = st.tuples(
    st.dates(min_value=date(2025, 10, 25), max_value=date(2026, 5, 5)),
    st.dates(min_value=date(2025, 10, 25), max_value=date(2026, 5, 5)),
).map(sorted)


@dataclass
class World:
    vouchers: list[str]
    partner_names: dict[str, str]
    offer_titles: dict[str, str]
    partner_regions: dict[str, str]


@pytest.fixture
async def world(db: asyncpg.Connection, settings) -> World:
    """Two partners, three offers, a holder of every category with a voucher for each offer."""
    partners = {
        await make_partner(db, name="区邮政分公司", category="postal"): "区邮政分公司",
        await make_partner(db, name="老兵饭店", category="catering"): "老兵饭店",
    }
    post, diner = partners
    regions = {post: "东城街道", diner: "和平里街道"}
    for partner_id, region in regions.items():
        await db.execute("UPDATE partners SET region = $2 WHERE id = $1", partner_id, region)
    offers = {}
    for partner_id, title in ((post, "邮政寄递九折"), (diner, "堂食八五折"), (diner, "免费停车")):
        offers[await make_offer(db, partner_id, title=title, uses_per_voucher=10_000)] = title
    vouchers = []
    for category in HOLDER_CATEGORIES:
        holder = await make_holder(db, category=category)
        for offer_id in offers:
            vouchers.append(await make_voucher(db, settings, holder, offer_id))
    return World(vouchers, partners, offers, regions)


async def _start_afresh(db: asyncpg.Connection) -> None:
    """Each example begins with an empty ledger and counters that match it."""
    await db.execute(
        "TRUNCATE reversals, redemptions, discount_rollup, discount_rollup_monthly, "
        "holder_offer_usage, ledger_entries, ledger_spans, ledger_nodes, ledger_checkpoints, "
        "ledger_watermark, ledger_halts"
    )
    await db.execute(
        "UPDATE offers SET redeemed_count = 0, spent = 0, conflict_count = 0, conflict_spent = 0"
    )
    await db.execute("UPDATE vouchers SET uses_left = uses_total, uses_over = 0, status = 'active'")


def _expected(
    ledger: list[asyncpg.Record], world: World, group_by: tuple[str, ...], first, last
) -> dict[tuple, dict[str, int]]:
    """The report computed from the ledger rows alone: group key -> measures."""
    sums: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    for entry in ledger:
        day = entry["created_at"].astimezone(SHANGHAI).date()
        if not first <= day <= last:
            continue
        key = []
        for name in group_by:
            if name == "partner":
                partner = entry["partner_id"]
                key += [partner, world.partner_names[partner], world.partner_regions[partner]]
            elif name == "offer":
                key += [entry["offer_id"], world.offer_titles[entry["offer_id"]]]
            elif name == "category":
                key.append(entry["holder_category"])
            else:
                key.append(f"{day.year:04d}-{day.month:02d}")
        sign = -1 if entry["reversal"] else 1
        measures = sums[tuple(key)]
        measures["reversals" if entry["reversal"] else "redemptions"] += 1
        measures["purchase_total"] += sign * entry["purchase_amount"]
        measures["discount_total"] += sign * entry["discount_amount"]
        measures["offline"] += entry["offline_at"] is not None
        measures["conflicts"] += entry["conflict"] is not None
    return dict(sums)


_LEDGER = """
    SELECT partner_id, offer_id, holder_category, purchase_amount, discount_amount,
           created_at, false AS reversal, offline_at, conflict FROM redemptions
    UNION ALL
    SELECT partner_id, offer_id, holder_category, purchase_amount, discount_amount,
           created_at, true, NULL, NULL FROM reversals
"""


@given(generated=st.lists(sales, max_size=25), period=periods, folded=st.integers(0, 40))
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_every_grouping_equals_the_ledger_summed_in_python(
    client: TestClient,
    admin,
    db: asyncpg.Connection,
    settings,
    world: World,
    generated,
    period,
    folded,
) -> None:
    # The app's own sequencer waits while this example holds its lock: the rollups hold
    # the first `folded` ledger rows, in the log's order, and no other.
    await ledger_db.lock_sequencer(db)
    try:
        await _check_example(client, admin, db, settings, world, generated, period, folded)
    finally:
        await ledger_db.unlock_sequencer(db)


async def _check_example(
    client: TestClient,
    admin,
    db: asyncpg.Connection,
    settings,
    world: World,
    generated,
    period,
    folded,
) -> None:
    await _start_afresh(db)
    for sale in generated:
        voucher = world.vouchers[sale.voucher % len(world.vouchers)]
        redemption_id = await record_redemption(
            db,
            settings,
            voucher,
            at=sale.at,
            purchase_amount=sale.purchase,
            discount_amount=sale.discount,
            offline_at=None if sale.offline is None else sale.at - timedelta(hours=1),
            conflict=sale.offline or None,
        )
        if sale.refunded_at is not None:
            await record_reversal(db, settings, redemption_id, at=sale.refunded_at)
    if folded:
        await fold_all(db, at_most=folded)
    in_rollups = await db.fetchval(
        "SELECT coalesce(sum(redemptions + reversals), 0) FROM discount_rollup"
    )
    written = len(generated) + sum(sale.refunded_at is not None for sale in generated)
    assert in_rollups == min(folded, written)  # folding is as far behind as drawn
    assert await mismatches(db) == {}

    ledger = await db.fetch(_LEDGER)
    first, last = period
    for size in range(len(GROUPS) + 1):
        for group_by in itertools.combinations(GROUPS, size):
            response = await client.get(
                "/v1/reports/discounts",
                params={
                    "group_by": ",".join(group_by),
                    "from": first.isoformat(),
                    "to": last.isoformat(),
                },
                headers=admin,
            )
            assert response.status == 200, await response.text()
            body = await response.json()
            rows = {
                tuple(value for name, value in row.items() if name not in MEASURES): {
                    m: row[m] for m in MEASURES
                }
                for row in body["rows"]
            }
            expected = _expected(ledger, world, group_by, first, last)
            if not group_by:
                expected = expected or {(): dict.fromkeys(MEASURES, 0)}
            assert rows == expected, group_by
            assert len(rows) == len(body["rows"]), group_by  # no group twice
            assert body["totals"] == {
                m: sum(values[m] for values in expected.values()) for m in MEASURES
            }
