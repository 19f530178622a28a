"""`youdai serve --demo`: demo data loaded once, and a printout whose keys, card and
PIN work against the running service."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.conftest import cli_env, free_port

pytestmark = pytest.mark.slow

_PRINTOUT = re.compile(
    r"admin key\s+(?P<admin>yd_\S+)\n"
    r"\s+scanner key\s+(?P<scanner>yd_\S+)\s+\(.*partner (?P<partner>ptn_\w+)\)\n"
    r"\s+holder card\s+(?P<card>\S+)\s+PIN\s+(?P<pin>\d+).*\n"
    r"\s+API docs\s+(?P<docs>\S+)\n"
    r"\s+scanner page\s+(?P<scan>\S+)\n"
    r"\s+wallet page\s+(?P<wallet>\S+)\n"
)


class DemoServer:
    """A running `youdai serve --demo` and what it printed."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.printed = self._read_printout()
        match = _PRINTOUT.search(self.printed)
        assert match, f"printout lacks keys, card, PIN or URLs:\n{self.printed}"
        self.values = match.groupdict()

    def _read_printout(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"youdai serve --demo exited: {''.join(lines)}")
            lines.append(line)
            if "wallet page" in line:
                return "".join(lines)
        raise AssertionError("no demo printout")

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "youdai serve --demo exited"
            try:
                async with session.get(f"{self.base}/readyz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError("youdai serve --demo did not become ready")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=60)
        self._log.close()
        assert self.process.returncode == 0


async def demo_rows(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("partners", "offers", "holders", "vouchers", "api_keys")
        }
    finally:
        await conn.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def preview_with_printed_keys(session: aiohttp.ClientSession, server: DemoServer) -> dict:
    """Sign in with the printed card + PIN, claim an offer of the scanner's partner, and
    preview its token with the printed scanner key."""
    base, values = server.base, server.values
    async with session.post(
        f"{base}/v1/holder-sessions", json={"card_number": values["card"], "pin": values["pin"]}
    ) as answer:
        assert answer.status == 201, await answer.text()
        holder = bearer((await answer.json())["token"])
    async with session.get(f"{base}/v1/me/offers", headers=holder) as answer:
        assert answer.status == 200
        offers = (await answer.json())["items"]
    offer = next(
        o for o in offers if o["partner_id"] == values["partner"] and o["kind"] == "percent_off"
    )
    async with session.post(
        f"{base}/v1/me/vouchers", json={"offer_id": offer["id"]}, headers=holder
    ) as answer:
        assert answer.status in (200, 201), await answer.text()
        voucher = await answer.json()
    async with session.get(
        f"{base}/v1/me/vouchers/{voucher['id']}/token", headers=holder
    ) as answer:
        assert answer.status == 200
        token = (await answer.json())["token"]
    async with session.post(
        f"{base}/v1/redemptions/preview",
        json={"token": token, "purchase_amount": 12800},
        headers=bearer(values["scanner"]),
    ) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


async def test_serve_demo_loads_once_and_prints_keys_card_and_urls_that_work(
    tmp_path: Path, database_url: str
) -> None:
    env = cli_env(YOUDAI_DATA_DIR=str(tmp_path / "data"), DATABASE_URL=database_url)
    port = free_port()
    async with aiohttp.ClientSession() as session:
        first = DemoServer(env, port, tmp_path / "first.log")
        try:
            await first.wait_ready(session)
            for page in ("docs", "scan", "wallet"):
                assert first.values[page] == f"http://127.0.0.1:{port}/{page}"
            async with session.get(first.values["docs"]) as answer:
                assert answer.status == 200
            async with session.get(
                f"{first.base}/v1/partners", headers=bearer(first.values["admin"])
            ) as answer:
                assert answer.status == 200
                partners = (await answer.json())["items"]
            async with session.get(
                f"{first.base}/v1/offers?limit=200", headers=bearer(first.values["admin"])
            ) as answer:
                offers = (await answer.json())["items"]
            async with session.get(
                f"{first.base}/v1/holders?limit=200", headers=bearer(first.values["admin"])
            ) as answer:
                holders = (await answer.json())["items"]
            preview = await preview_with_printed_keys(session, first)
        finally:
            first.stop()
        after_first = await demo_rows(database_url)

        second = DemoServer(env, port, tmp_path / "second.log")
        try:
            await second.wait_ready(session)
            assert second.values["admin"] != first.values["admin"]
            assert second.values["scanner"] != first.values["scanner"]
            assert (second.values["card"], second.values["pin"]) == (
                first.values["card"],
                first.values["pin"],
            )
            for key in ("admin", "scanner"):  # new keys, and the first run's still work
                async with session.get(
                    f"{second.base}/v1/partners", headers=bearer(second.values[key])
                ) as answer:
                    assert answer.status == (200 if key == "admin" else 403)
            async with session.get(
                f"{second.base}/v1/partners", headers=bearer(first.values["admin"])
            ) as answer:
                assert answer.status == 200
            again = await preview_with_printed_keys(session, second)
        finally:
            second.stop()
        after_second = await demo_rows(database_url)

    assert "already loaded" in second.printed
    assert {table: after_second[table] for table in ("partners", "offers", "holders")} == {
        table: after_first[table] for table in ("partners", "offers", "holders")
    }
    assert after_second["vouchers"] == after_first["vouchers"]  # the same voucher, claimed again
    assert after_second["api_keys"] == after_first["api_keys"] + 2

    assert all(partner["status"] == "active" for partner in partners)
    categories = Counter(partner["category"] for partner in partners)
    assert categories["postal"] == 1 and categories["culture_tourism"] == 1
    assert categories["catering"] >= 2 and categories["health"] >= 1
    assert any("邮政" in partner["name"] for partner in partners)
    assert all(offer["status"] == "active" for offer in offers)
    assert {offer["kind"] for offer in offers} == {
        "percent_off",
        "amount_off",
        "fixed_price",
        "service",
    }
    assert len({holder["category"] for holder in holders}) >= 4
    assert preview["discount_amount"] > 0
    assert preview["purchase_amount"] == 12800
    assert again["discount_amount"] == preview["discount_amount"]


def _meta_help_phone(html: str) -> str:
    match = re.search(r'<meta name="youdai-help-phone" content="([^"]*)">', html)
    assert match, "the wallet page has no help-phone meta tag"
    return match.group(1)


@pytest.mark.parametrize("configured", ["", "010-6551 2345"], ids=["unset", "configured"])
async def test_serve_demo_gives_the_wallet_a_help_number_unless_one_is_configured(
    tmp_path: Path, database_url: str, configured: str
) -> None:
    """docs/pages.md: the wallet says whom to call (a locked card included); a demo shows it
    with a demo number, and never replaces the bureau's own."""
    from service.demo import DEMO_HELP_PHONE

    env = cli_env(YOUDAI_DATA_DIR=str(tmp_path / "data"), DATABASE_URL=database_url)
    if configured:
        env["YOUDAI_HELP_PHONE"] = configured
    server = DemoServer(env, free_port(), tmp_path / "demo.log")
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_ready(session)
            async with session.get(server.values["wallet"]) as answer:
                shown = _meta_help_phone(await answer.text())
    finally:
        server.stop()
    assert shown == (configured or DEMO_HELP_PHONE)
