"""The baseline for bench/redeem.py: the least a hand-written redeem endpoint must do.

    .venv/bin/python bench/baseline_app.py --dsn URL --port N --scanner-key-id KEY_ID
        [--pool-min 1] [--pool-max 10] [--uvloop]

POST /redeem {"voucher_id", "purchase_amount"} runs, on one pooled asyncpg connection:
BEGIN; SELECT … FROM vouchers … FOR UPDATE; INSERT a row into the real ledger table
(redemptions: same indexes, foreign keys and append-only trigger as the service
writes); UPDATE the voucher's uses_left counter; COMMIT — and answers 201 with the
ledger row's id. No authentication, no token, no rules, no idempotency, no rollup,
no offer counters, no logging: everything the service does beyond this is its cost.
It serves like `youdai serve` does (one process, aiohttp, the same backlog, the same
pool size) so that bench/redeem.py compares the two under the same load generator;
on asyncio's event loop, as a plain hand-written endpoint would, or with --uvloop.
"""

from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ruff: noqa: E402  (the imports below must come after that)

import argparse
import asyncio
import json
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from service.domain.ids import new_id

POOL = web.AppKey("pool", asyncpg.Pool)
SCANNER_KEY_ID = web.AppKey("scanner_key_id", str)

SELECT_FOR_UPDATE = """
    SELECT holder_id, offer_id, partner_id, uses_left FROM vouchers
    WHERE id = $1 AND status = 'active' FOR UPDATE
"""
INSERT_LEDGER = """
    INSERT INTO redemptions
        (id, voucher_id, offer_id, partner_id, holder_id, holder_category, scanner_key_id,
         purchase_amount, discount_amount, payable_amount, budget_cost, created_at, local_day)
    VALUES ($1, $2, $3, $4, $5, 'veteran', $6, $7, $8, $9, $8, $10, $11)
"""
UPDATE_COUNTER = "UPDATE vouchers SET uses_left = uses_left - 1, updated_at = $2 WHERE id = $1"


async def redeem(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    voucher_id, purchase = body["voucher_id"], body["purchase_amount"]
    now = datetime.now(UTC)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        voucher = await conn.fetchrow(SELECT_FOR_UPDATE, voucher_id)
        if voucher is None or voucher["uses_left"] <= 0:
            return web.json_response({"code": "voucher_used_up"}, status=422)
        discount = purchase // 10
        redemption_id = new_id("redemption")
        await conn.execute(
            INSERT_LEDGER,
            redemption_id,
            voucher_id,
            voucher["offer_id"],
            voucher["partner_id"],
            voucher["holder_id"],
            request.app[SCANNER_KEY_ID],
            purchase,
            discount,
            purchase - discount,
            now,
            now.date(),
        )
        await conn.execute(UPDATE_COUNTER, voucher_id, now)
    return web.json_response(
        {"id": redemption_id, "voucher_id": voucher_id, "uses_left": voucher["uses_left"] - 1},
        status=201,
    )


def create_app(dsn: str, scanner_key_id: str, pool_min: int, pool_max: int) -> web.Application:
    async def pool(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = await asyncpg.create_pool(dsn, min_size=pool_min, max_size=pool_max)
        yield
        await app[POOL].close()

    app = web.Application()
    app[SCANNER_KEY_ID] = scanner_key_id
    app.router.add_post("/redeem", redeem)
    app.router.add_get("/readyz", lambda _: web.Response(text="ok"))
    app.cleanup_ctx.append(pool)
    return app


async def serve(args: argparse.Namespace) -> None:
    app = create_app(args.dsn, args.scanner_key_id, args.pool_min, args.pool_max)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024).start()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scanner-key-id", required=True, help="api_keys.id for the ledger FK")
    parser.add_argument("--pool-min", type=int, default=1)
    parser.add_argument("--pool-max", type=int, default=10)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(args))
    else:
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
