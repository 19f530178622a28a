"""Voucher QR PNGs: the endpoint's rate against the raw qrcode library, in the same run.

    .venv/bin/python bench/qr.py [--seconds 3] [--rounds 3] [--clients 8] [--workers N]

Uses the PostgreSQL in DATABASE_URL (the URL of a maintenance database: a fresh
database is created there and dropped at the end) or starts the embedded one in a
temporary folder, like tests/conftest.py. It seeds a partner, an offer and a holder,
starts the app in this process on a local port, signs the holder in, claims a
voucher, and takes one token from …/token: the raw lines encode that same token.

Lines, each round (rates in images per second; medians over the rounds at the end):
- raw default: qrcode.QRCode() as it comes (error correction M, best of 8 masks,
  version search), one image after another on one core;
- raw chosen: qrcode.QRCode with service/qr.py's settings (L, mask 4, border 4), as a
  plain user would write it (version search still on);
- service.qr.png: what a render process runs per image (the same settings, plus byte
  mode and the version looked up once per token length), on one core;
- endpoint: GET …/qr.png over HTTP from `--clients` concurrent client tasks in this
  process, each answer read in full; every request checks the session, reads the
  voucher and the signing key, signs a fresh token and draws it in the render pool
  (`--workers` processes; default: one per core, at most service.qr.MAX_WORKERS).
qrcode's own PNG writers need Pillow or pypng, which the service does without, so
every line packs its matrix with the service's PNG writer (service.qr.png_image):
the lines differ in encoding and serving only. Goal: endpoint ≥ 0.8× raw chosen.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder would come first on sys.path, where bench/token.py
# shadows the standard library's `token` module: put the repository root there instead.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ruff: noqa: E402  (the imports below must come after that)

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import aiohttp
import asyncpg
import qrcode
from aiohttp import web

from bench._common import free_port, fresh_database, postgres
from service import qr
from service.app import create_app
from service.config import load_settings
from service.db.migrate import migrate
from service.db.pool import init_connection
from tests.helpers import make_holder, make_offer, make_partner

CARD, PIN = "BENCH-QR-0001", "204816"


def raw_default(token: str) -> bytes:
    code = qrcode.QRCode()
    code.add_data(token)
    code.make()
    return qr.png_image(code.get_matrix())


def raw_chosen(token: str) -> bytes:
    code = qrcode.QRCode(
        error_correction=qr.ERROR_CORRECTION, mask_pattern=qr.MASK_PATTERN, border=qr.BORDER
    )
    code.add_data(token)
    code.make()
    return qr.png_image(code.get_matrix())


def raw_rate(draw: Callable[[str], bytes], token: str, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        draw(token)
        count += 1
    return count / (time.perf_counter() - started)


async def endpoint_rate(
    session: aiohttp.ClientSession, url: str, clients: int, seconds: float
) -> float:
    deadline = time.perf_counter() + seconds

    async def client() -> int:
        count = 0
        while time.perf_counter() < deadline:
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"qr.png answered {response.status}")
            count += 1
        return count

    started = time.perf_counter()
    counts = await asyncio.gather(*(client() for _ in range(clients)))
    return sum(counts) / (time.perf_counter() - started)


async def seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await init_connection(conn)
        await migrate(conn)
        offer_partner = await make_partner(conn)
        await make_offer(conn, offer_partner)
        await make_holder(conn, card_number=CARD, pin=PIN)
    finally:
        await conn.close()


async def run(dsn: str, args: argparse.Namespace) -> None:
    await seed(dsn)
    runner = web.AppRunner(create_app(load_settings({"YOUDAI_LOG_LEVEL": "WARNING"}), dsn))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.clients)) as session:
        async with session.post(
            f"{base}/v1/holder-sessions", json={"card_number": CARD, "pin": PIN}
        ) as response:
            session.headers["Authorization"] = f"Bearer {(await response.json())['token']}"
        async with session.get(f"{base}/v1/me/offers") as response:
            offer = (await response.json())["items"][0]["id"]
        async with session.post(f"{base}/v1/me/vouchers", json={"offer_id": offer}) as response:
            voucher = (await response.json())["id"]
        async with session.get(f"{base}/v1/me/vouchers/{voucher}/token") as response:
            token = (await response.json())["token"]
        url = f"{base}/v1/me/vouchers/{voucher}/qr.png"
        print(
            f"token {len(token)} chars; {os.cpu_count()} cores; render workers "
            f"{min(qr.MAX_WORKERS, qr.usable_cores())}; "
            f"{args.clients} clients; {args.rounds} rounds of {args.seconds:g} s"
        )
        await endpoint_rate(session, url, args.clients, 1.0)  # start the render processes
        defaults, chosen, drawn, served = [], [], [], []
        for index in range(args.rounds):
            defaults.append(raw_rate(raw_default, token, args.seconds / 2))
            chosen.append(raw_rate(raw_chosen, token, args.seconds))
            drawn.append(raw_rate(qr.png, token, args.seconds / 2))
            served.append(await endpoint_rate(session, url, args.clients, args.seconds))
            print(
                f"round {index + 1}: raw default {defaults[-1]:6.1f}/s  "
                f"raw chosen {chosen[-1]:6.1f}/s  service.qr.png {drawn[-1]:6.1f}/s  "
                f"endpoint {served[-1]:6.1f}/s  "
                f"endpoint/raw chosen {served[-1] / chosen[-1]:.2f}x"
            )
    await runner.cleanup()
    default, best, draw, endpoint = map(statistics.median, (defaults, chosen, drawn, served))
    print(f"raw qrcode, default settings  {default:7.1f} images/s (one core)")
    print(f"raw qrcode, chosen settings   {best:7.1f} images/s (one core)")
    print(f"service.qr.png in process     {draw:7.1f} images/s (one core)")
    print(f"endpoint GET …/qr.png         {endpoint:7.1f} images/s")
    print(
        f"endpoint/raw chosen {endpoint / best:.2f}x (goal ≥ 0.8x)   "
        f"endpoint/raw default {endpoint / default:.2f}x   "
        f"chosen/default {best / default:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per line and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, help="render processes (default: per core)")
    args = parser.parse_args()
    if args.workers:
        qr.MAX_WORKERS = args.workers
    with postgres() as maintenance_url, fresh_database(maintenance_url) as dsn:
        asyncio.run(run(dsn, args))


if __name__ == "__main__":
    main()
