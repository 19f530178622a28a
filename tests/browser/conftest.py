"""A running youdai and the system Chromium, for tests that drive the pages.

The app runs in a thread of its own, on a free port, against a cloned database (as in
tests/api/test_fuzz.py). The browser is Debian's `chromium` at /usr/bin/chromium,
driven by Playwright for Python: nothing is downloaded (never `playwright install`).
Without it the browser tests skip, saying why; .ci/run installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from aiohttp import web

from service.app import create_app
from service.config import load_settings
from service.db.pool import init_connection
from service.pages import SHARED_DIR
from tests.conftest import ROOT, TestServer, free_port

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The bureau's number the wallet shows (YOUDAI_HELP_PHONE of the live app).
HELP_PHONE = "010-6551 2345"
#: Screenshots of the pages, for people to look at (gitignored).
OUTPUT = ROOT / "tests" / "output"
MESSAGES = json.loads((SHARED_DIR / "messages.json").read_text(encoding="utf-8"))


def ui(key: str, lang: str = "zh", **values: object) -> str:
    """A page text as messages.json writes it, placeholders filled."""
    text = MESSAGES["ui"][key][lang]
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def problem(code: str, lang: str = "zh") -> str:
    return MESSAGES["problems"][code][lang]


class LiveApp:
    """youdai serving on 127.0.0.1 from a thread; `run` executes a coroutine on a
    database connection of its own, for arranging rows and checking the ledger."""

    def __init__(self, url: str, database_url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.url = url
        self.database_url = database_url
        self.loop = loop

    def run(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def with_connection() -> T:
            conn = await asyncpg.connect(self.database_url)
            await init_connection(conn)
            try:
                return await work(conn)
            finally:
                await conn.close()

        return asyncio.run_coroutine_threadsafe(with_connection(), self.loop).result(timeout=60)


@contextlib.contextmanager
def serving(pg_server: TestServer, **env: str) -> Iterator[LiveApp]:
    """youdai on a database cloned for it, with YOUDAI_* settings `env` beside the usual.

    Everything asynchronous runs on the app's own loop, in its thread: Playwright's sync
    API keeps an event loop in the test's thread while a browser runs, and asyncio.run
    refuses to nest, so an app may be started after the browser."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runners: list[web.AppRunner] = []
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    database_url = asyncio.run_coroutine_threadsafe(pg_server.clone(), loop).result(timeout=60)

    async def start() -> None:
        settings = load_settings(
            {"YOUDAI_LOG_LEVEL": "WARNING", "YOUDAI_HELP_PHONE": HELP_PHONE, **env}
        )
        app = create_app(settings, database_url)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)

    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    try:
        yield LiveApp(f"http://127.0.0.1:{port}", database_url, loop)
    finally:
        asyncio.run_coroutine_threadsafe(runners[0].cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def live_app(pg_server: TestServer) -> Iterator[LiveApp]:
    with serving(pg_server) as app:
        yield app


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no system Chromium at {CHROMIUM}: run `apt-get install -y chromium` "
            "(.ci/run does when it runs as root)"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path, live_app: LiveApp) -> Iterator[Any]:
    """Chromium, started after the app, so that an app that cannot start says so first."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is missing: pip install -e '.[test]'"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Console:
    """What the pages said on the console; a Content-Security-Policy violation fails the test."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def listen(self, page: Any) -> Any:
        page.on("console", lambda message: self.messages.append(message.text))
        page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))
        return page

    def violations(self) -> list[str]:
        return [
            m for m in self.messages if "Content Security Policy" in m or m.startswith("pageerror")
        ]


@pytest.fixture
def console() -> Iterator[Console]:
    seen = Console()
    yield seen
    assert not seen.violations(), seen.violations()


@pytest.fixture
def phone(browser: Any, live_app: LiveApp, console: Console) -> Iterator[Any]:
    """A page in a phone-sized browser (360 px wide), Chinese preferred."""
    context = browser.new_context(
        base_url=live_app.url,
        viewport={"width": 360, "height": 760},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    context.set_default_timeout(15_000)
    yield console.listen(context.new_page())
    context.close()


@pytest.fixture
def till(browser: Any, live_app: LiveApp, console: Console) -> Iterator[Any]:
    """A page in a till-sized browser (1024×768), Chinese preferred."""
    context = browser.new_context(
        base_url=live_app.url, viewport={"width": 1024, "height": 768}, locale="zh-CN"
    )
    context.set_default_timeout(15_000)
    yield console.listen(context.new_page())
    context.close()
