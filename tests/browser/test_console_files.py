"""/console over HTTP: served from the package under a strict Content-Security-Policy,
its files by content-hashed names cached for a year, every path below /console the same
page, and every text it shows written in Chinese and English in the messages.json it
shares with the pages.

No browser needed: these run everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from service.api.console import build, imports
from service.domain import holders, offers, partners
from service.domain.categories import HOLDER_CATEGORIES
from service.pages import CONSOLE_DIR, SHARED_DIR
from tests.browser.test_page_files import EXTERNAL_URL, MESSAGES, page_text_keys
from tests.browser.test_page_files import linked_files as _linked_files


async def linked_files(client: TestClient, page: str) -> tuple[str, list[str]]:
    """The page and the files it links (not its in-page #anchors)."""
    html, links = await _linked_files(client, page)
    return html, [link for link in links if not link.startswith("#")]


async def test_console_is_served_with_a_strict_content_security_policy(client: TestClient) -> None:
    response = await client.get("/console")
    assert response.status == 200
    assert response.content_type == "text/html"
    policy = {
        d.split()[0]: d.split()[1:] for d in response.headers["Content-Security-Policy"].split(";")
    }
    assert policy["default-src"] == ["'self'"]
    # Files of this service, and the one inline script: the import map, by its hash.
    html = await response.text()
    (mapping,) = re.findall(r'<script type="importmap">([^<]*)</script>', html)
    digest = base64.b64encode(hashlib.sha256(mapping.encode()).digest()).decode()
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/console/", "/console/offers", "/console/partners/ptn_38GM2K1Q", "/console/setup"]
)
async def test_every_path_below_console_is_the_same_page(client: TestClient, path: str) -> None:
    page = await (await client.get("/console")).text()
    response = await client.get(path + "?status=active")
    assert response.status == 200
    assert await response.text() == page


async def test_console_has_no_inline_script_or_style_and_names_no_outside_url(
    client: TestClient,
) -> None:
    html, links = await linked_files(client, "/console")
    assert not re.search(r"<script(?![^>]*\ssrc=)(?! type=\"importmap\")[^>]*>", html)
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    assert not EXTERNAL_URL.search(html)
    preloaded = re.findall(r'<link rel="modulepreload" href="([^"]+)"', html)
    # Style sheet, messages and the app module.
    assert len(set(links) - set(preloaded)) == 3
    modules = [*CONSOLE_DIR.glob("*.js"), *SHARED_DIR.glob("*.js")]
    assert len(preloaded) == len(modules) - 1  # every other module
    for path in [*CONSOLE_DIR.iterdir(), *SHARED_DIR.iterdir()]:
        text = path.read_text(encoding="utf-8")
        assert not EXTERNAL_URL.search(text.replace('"http://www.w3.org/2000/svg"', "")), path.name
        if path.suffix == ".js":
            # No eval, no HTML parsed from strings, no inline styles set from script.
            assert not re.search(r"\beval\(|new Function|innerHTML|outerHTML|\.style\.", text), (
                path.name
            )


async def test_assets_have_content_hashed_names_and_are_cached_for_a_year(
    client: TestClient,
) -> None:
    _, links = await linked_files(client, "/console")
    for link in links:
        assert re.fullmatch(
            r"/console/assets/[a-z0-9_-]+\.[0-9a-f]{12}\.(js|css|json)",
            link,
        ), link
        response = await client.get(link)
        assert response.status == 200, link
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Content-Security-Policy"]
        again = await client.get(link, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status == 304


async def test_modules_import_each_other_through_the_pages_import_map(
    client: TestClient,
) -> None:
    """Modules are served as written (`from "./api.js"`); the page's import map sends each
    plain URL to the hashed one, and it names every module that exists."""
    html = await (await client.get("/console")).text()
    (mapping,) = re.findall(r'<script type="importmap">([^<]*)</script>', html)
    mapped = json.loads(mapping)["imports"]
    assert html.index('type="importmap"') < html.index('rel="modulepreload"')
    modules = [*CONSOLE_DIR.glob("*.js"), *SHARED_DIR.glob("*.js")]
    assert sorted(mapped) == sorted(f"/console/assets/{p.name}" for p in modules)
    built = build()
    app = built.assets[built.names["app.js"]].body.decode()
    for name in re.findall(r'from "\./([^"]+)"', app):
        target = mapped[f"/console/assets/{name}"]
        assert re.fullmatch(r"/console/assets/[a-z0-9-]+\.[0-9a-f]{12}\.js", target)
        assert (await client.get(target)).status == 200


@pytest.mark.parametrize(
    "name", ["app.js", "app.000000000000.js", "console.html", "..%2Fconsole.html", "nothing.css"]
)
async def test_old_or_unknown_asset_names_are_not_found(client: TestClient, name: str) -> None:
    response = await client.get("/console/assets/" + name)
    assert response.status == 404


def test_a_changed_module_changes_its_own_name_and_the_map_only(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text('import { b } from "./b.js";\n')
    (tmp_path / "b.js").write_text("export const b = 1;\n")
    first = build((tmp_path,))
    (tmp_path / "b.js").write_text("export const b = 2;\n")
    build.cache_clear()
    second = build((tmp_path,))
    build.cache_clear()
    assert first.names["b.js"] != second.names["b.js"]
    assert first.names["a.js"] == second.names["a.js"]
    assert imports(second)["/console/assets/b.js"] == ("/console/assets/" + second.names["b.js"])


def _used_keys() -> tuple[set[str], set[str], set[str]]:
    """Keys the scripts ask for by name, every quoted word they hold (keys passed around
    as values), and the prefixes they complete at run time (`t("status_" + status)`)."""
    asked: set[str] = set()
    quoted: set[str] = set()
    prefixes: set[str] = set()
    for path in [*CONSOLE_DIR.glob("*.js"), *SHARED_DIR.glob("*.js")]:
        source = path.read_text(encoding="utf-8")
        asked.update(re.findall(r'\b(?:t|viewFrame|figure)\("([a-z0-9_]*[a-z0-9])"', source))
        quoted.update(re.findall(r'"([a-z][a-z0-9_]*)"', source))
        prefixes.update(re.findall(r'"([a-z0-9_]+_)" \+', source))
    return asked, quoted, prefixes


def test_every_text_the_console_uses_is_written_in_the_one_messages_file() -> None:
    texts = MESSAGES["ui"]
    asked, _, _ = _used_keys()
    assert not sorted(asked - set(texts)), "texts used but not written in messages.json"


def test_every_text_written_is_used_by_the_console_or_the_pages() -> None:
    _, quoted, prefixes = _used_keys()
    used = page_text_keys()
    unused = [
        key
        for key in MESSAGES["ui"]
        if key not in used and key not in quoted and not any(key.startswith(p) for p in prefixes)
    ]
    assert not unused, f"texts written but never used: {unused}"


async def test_the_console_model_is_the_services_own_rules(client: TestClient) -> None:
    """Life cycles, who may call what and the enumerations come from the service, so the
    console never offers a move or an action the API refuses (a JS copy once offered
    "terminate" on an active partner)."""
    response = await client.get("/console/model.json")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-cache"
    model = await response.json()
    assert model["lifecycles"]["partner"]["active"] == sorted(partners.LIFECYCLE.moves["active"])
    for name, cycle in (("partner", partners), ("offer", offers), ("holder", holders)):
        assert {k: set(v) for k, v in model["lifecycles"][name].items()} == {
            k: set(v) for k, v in cycle.LIFECYCLE.moves.items()
        }
    operations = model["operations"]
    assert operations["PATCH /v1/partners/{partner_id}"] == ["bureau_admin"]
    assert operations["GET /v1/audit-events"] == ["bureau_admin", "bureau_auditor"]
    assert operations["POST /v1/offers"] == ["bureau_admin", "partner_manager"]
    assert model["enums"]["holder_category"] == list(HOLDER_CATEGORIES)


async def test_every_operation_the_console_asks_about_exists(client: TestClient) -> None:
    """roles.js names API operations; a misspelt one would hide a feature from everyone."""
    model = await (await client.get("/console/model.json")).json()
    named = re.findall(
        r'"((?:GET|POST|PATCH|DELETE) /v1/[^"]+)"', (CONSOLE_DIR / "roles.js").read_text()
    )
    assert len(named) >= 10
    assert not [operation for operation in named if operation not in model["operations"]]
