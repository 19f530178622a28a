"""The pages' files over HTTP: self-contained, cached by ETag, under a strict
Content-Security-Policy, and every text written in Chinese and English.

No browser needed: these run everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from schemas.vouchers import VOUCHER_STATUSES
from service.api import pages as pages_api
from service.api.pages import accepts_gzip, negotiate_language
from service.domain.categories import HOLDER_CATEGORIES
from service.domain.errors import CODES
from service.pages import SHARED_DIR, STATIC_DIR

PAGES = ("/scan", "/wallet")
#: The one messages file of both front ends (the pages and the console).
MESSAGES = json.loads((SHARED_DIR / "messages.json").read_text(encoding="utf-8"))
#: An absolute or protocol-relative URL: http://…, https://…, or //host in a link,
#: a string or a CSS url(). The SVG namespace (the favicon's xmlns) names, never fetches.
EXTERNAL_URL = re.compile(
    r"""https?:(?!//www\.w3\.org/2000/svg")|(?:(?:src|href|action)\s*=\s*["']?|url\(\s*["']?|["'`])//[^/\s"'`]"""
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def import_map_source(html: str) -> str:
    """The script-src source allowing the page's import map: its hash."""
    (mapping,) = re.findall(r'<script type="importmap">([^<]*)</script>', html)
    return f"'sha256-{base64.b64encode(hashlib.sha256(mapping.encode()).digest()).decode()}'"


async def linked_files(client: TestClient, page: str) -> tuple[str, list[str]]:
    response = await client.get(page)
    html = await response.text()
    return html, re.findall(r"""(?:src|href)="([^"]+)\"""", html)


@pytest.mark.parametrize("page", PAGES)
async def test_pages_are_served_with_a_strict_content_security_policy(
    client: TestClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status == 200
    assert response.content_type == "text/html"
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["Content-Security-Policy"].split(";")
    }
    assert policy["default-src"] == ["'self'"]
    # Files of this service, and the one inline script: the import map, by its hash.
    assert policy["script-src"] == ["'self'", import_map_source(await response.text())]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("page", PAGES)
async def test_pages_have_no_inline_script_or_style(client: TestClient, page: str) -> None:
    html, _ = await linked_files(client, page)
    assert not re.search(r"<script(?![^>]*\ssrc=)(?! type=\"importmap\")[^>]*>", html)
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either


@pytest.mark.parametrize("page", PAGES)
async def test_no_page_or_file_it_loads_names_an_outside_url(client: TestClient, page: str) -> None:
    html, links = await linked_files(client, page)
    assert not EXTERNAL_URL.search(html), EXTERNAL_URL.search(html)
    assert links
    for link in links:
        assert re.match(r"^/[^/]", link), link
        response = await client.get(link)
        assert response.status == 200, link
        body = await response.text()
        assert not EXTERNAL_URL.search(body), (link, EXTERNAL_URL.search(body))


def test_no_shipped_page_file_names_an_outside_url() -> None:
    files = sorted([*STATIC_DIR.iterdir(), *SHARED_DIR.iterdir()])
    assert {path.suffix for path in files} >= {".html", ".js", ".css", ".json"}
    for path in files:
        assert path.is_file(), f"{path.name}: package-data ships static/* only, no folders"
        text = path.read_text(encoding="utf-8")
        assert not EXTERNAL_URL.search(text), (path.name, EXTERNAL_URL.search(text))


def test_the_detector_finds_outside_urls() -> None:
    for text in (
        '<script src="https://cdn.example/x.js">',
        "fetch('//api.example/v1')",
        "url(//fonts.example/a.woff)",
        'href="http://example.com"',
    ):
        assert EXTERNAL_URL.search(text), text
    assert not EXTERNAL_URL.search('// a comment\nfetch("/v1/me")')


async def test_files_carry_an_etag_and_are_not_sent_again_while_unchanged(
    client: TestClient,
) -> None:
    first = await client.get("/pages/static/scan.js", headers={"Accept-Encoding": "identity"})
    assert first.status == 200
    assert first.content_type == "text/javascript"
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert "public" in first.headers["Cache-Control"]
    assert "max-age=3600" in first.headers["Cache-Control"]

    again = await client.get(
        "/pages/static/scan.js", headers={"If-None-Match": etag, "Accept-Encoding": "identity"}
    )
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag

    other = await client.get("/pages/static/scan.js", headers={"If-None-Match": '"stale"'})
    assert other.status == 200


@pytest.mark.parametrize(
    "path", ["/scan", "/wallet", "/console", "/pages/static/scan.js", "/pages/static/pages.css"]
)
async def test_text_is_sent_gzip_compressed_to_a_browser_that_takes_it(
    client: TestClient, path: str
) -> None:
    """Compressed once when the file is read, not per request; a representation of its
    own, so its ETag differs and caches keep both apart (Vary)."""
    plain = await client.get(path, headers={"Accept-Encoding": "identity"})
    packed = await client.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert (
        "Accept-Encoding" in packed.headers["Vary"] and "Accept-Encoding" in plain.headers["Vary"]
    )
    assert await packed.read() == await plain.read()  # the client decompresses it
    assert int(packed.headers["Content-Length"]) < int(plain.headers["Content-Length"]) / 2
    assert packed.headers["ETag"] != plain.headers["ETag"]
    again = await client.get(
        path, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]}
    )
    assert again.status == 304
    refused = await client.get(path, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers


@pytest.mark.parametrize(
    ("header", "takes_gzip"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP;q=0.5", True),
        ("br, gzip;q=0", False),
        ("*", True),
        ("*;q=0", False),
        ("identity", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header: str | None, takes_gzip: bool) -> None:
    assert accepts_gzip(header) is takes_gzip


@pytest.mark.parametrize("page", PAGES)
async def test_files_linked_by_their_hash_are_cached_for_a_year(
    client: TestClient, page: str
) -> None:
    """The page's link names the file's hash (`?v=`): that URL never changes meaning. A
    link without it, or with an old hash, is kept an hour and then revalidated."""
    html = await (await client.get(page)).text()
    links = re.findall(r'"(/pages/static/[^"?]+\?v=[0-9a-f]{12})"', html)
    assert links
    for link in links:
        linked = await client.get(link)
        assert linked.headers["Cache-Control"] == "public, max-age=31536000, immutable", link
        plain = await client.get(link.split("?")[0])
        assert plain.headers["Cache-Control"] == "public, max-age=3600, must-revalidate"
        old = await client.get(link.split("?")[0] + "?v=000000000000")
        assert old.headers["Cache-Control"] == "public, max-age=3600, must-revalidate"


@pytest.mark.parametrize("page", PAGES)
async def test_pages_are_revalidated_and_answer_304_while_unchanged(
    client: TestClient, page: str
) -> None:
    first = await client.get(page)
    assert first.headers["Cache-Control"] == "no-cache"
    assert "Accept-Language" in first.headers["Vary"]
    again = await client.get(page, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304


@pytest.mark.parametrize("page", PAGES)
async def test_pages_link_their_files_by_content_hash(client: TestClient, page: str) -> None:
    _, links = await linked_files(client, page)
    files = [link for link in links if link.startswith("/pages/static/")]
    assert files and set(links) - set(files) <= {"/directory"}  # the wallet's one page link
    for link in files:
        path, _, query = link.partition("?v=")
        assert query, link
        response = await client.get(path)
        assert response.headers["ETag"].strip('"').startswith(query), link


@pytest.mark.parametrize("name", ["nothing.js", "scan.html", "..%2Fapp.py", "%2E%2E%2F__init__.py"])
async def test_unknown_files_are_not_found(client: TestClient, name: str) -> None:
    response = await client.get(f"/pages/static/{name}")
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert (await response.json())["code"] == "not_found"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "zh-CN"),
        ("", "zh-CN"),
        ("zh-CN,zh;q=0.9", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en", "en"),
        ("fr-FR, en;q=0.5", "en"),
        ("en;q=0.5, zh;q=0.8", "zh-CN"),
        ("zh;q=0.8, en;q=0.8", "zh-CN"),
        ("en;q=0, zh;q=0.1", "zh-CN"),
        ("fr", "zh-CN"),
        ("*", "zh-CN"),
        ("en;q=abc", "zh-CN"),
        ("🙂, en", "en"),
    ],
)
def test_page_language_follows_accept_language(header: str | None, language: str) -> None:
    assert negotiate_language(header) == language


async def test_page_is_served_in_the_language_the_browser_prefers(client: TestClient) -> None:
    english = await (await client.get("/wallet", headers={"Accept-Language": "en-GB"})).text()
    chinese = await (await client.get("/wallet", headers={"Accept-Language": "zh-CN"})).text()
    assert '<html lang="en">' in english
    assert '<html lang="zh-CN">' in chinese


def test_every_problem_code_has_one_wording_in_chinese_and_english() -> None:
    """One wording per code, shared by the pages and the console."""
    problems = MESSAGES["problems"]
    missing = sorted(set(CODES) - set(problems))
    assert not missing, f"messages.json lacks problem codes: {missing}"
    assert "network_error" in problems  # the client's own: no connection
    for code, text in problems.items():
        assert set(text) == {"zh", "en"}, code
        assert CJK.search(text["zh"]), f"{code}: the zh message is not Chinese"
        assert text["en"].strip() and not CJK.search(text["en"]), code
        zh, en = (sorted(re.findall(r"{(\w+)}", text[lang])) for lang in ("zh", "en"))
        assert zh == en, f"{code}: zh and en take different values"


def page_text_keys() -> set[str]:
    """The texts the pages ask for by name (their HTML's data-i18n, their scripts' t(…))."""
    used = {f"category_{c}" for c in HOLDER_CATEGORIES} | {
        f"voucher_status_{s}" for s in VOUCHER_STATUSES
    }
    for path in [*STATIC_DIR.iterdir(), *SHARED_DIR.glob("*.js")]:
        source = path.read_text(encoding="utf-8")
        if path.suffix == ".html":
            used.update(re.findall(r'data-i18n(?:-[a-z]+)?="([a-z0-9_]+)"', source))
        elif path.suffix == ".js":
            used.update(re.findall(r"""\berror:\s*"([a-z0-9_]+)\"""", source))
            for call in re.findall(r"\b(?:t|button|signOut)\(([^)]*)\)", source):
                used.update(k for k in re.findall(r'"([a-z][a-z0-9_]*)"', call) if k[-1] != "_")
    return used


def test_every_text_the_pages_use_is_written_in_both_languages() -> None:
    texts = MESSAGES["ui"]
    assert not sorted(page_text_keys() - set(texts)), "texts used but not written in messages.json"
    for key, text in texts.items():
        assert set(text) == {"zh", "en"} and text["zh"].strip() and text["en"].strip(), key
        zh, en = (sorted(re.findall(r"{(\w+)}", text[lang])) for lang in ("zh", "en"))
        assert zh == en, f"{key}: zh and en take different values"


# --- /scan installable: its manifest and service worker --------------------------------------


async def test_the_till_links_a_manifest_whose_scope_is_the_till(client: TestClient) -> None:
    html, links = await linked_files(client, "/scan")
    manifest_link = re.search(r'<link rel="manifest" href="([^"]+)">', html)
    assert manifest_link and manifest_link[1] in links
    response = await client.get(manifest_link[1])
    assert response.status == 200
    assert response.content_type == "application/manifest+json"
    manifest = json.loads(await response.text())
    assert manifest["start_url"] == manifest["scope"] == "/scan"
    assert manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        assert (await client.get(icon["src"])).status == 200


async def test_the_till_allows_only_its_own_worker_and_manifest(client: TestClient) -> None:
    for path in ("/scan", "/scan-worker.js"):
        response = await client.get(path)
        policy = {
            directive.split()[0]: directive.split()[1:]
            for directive in response.headers["Content-Security-Policy"].split(";")
        }
        assert policy["worker-src"] == ["'self'"], path
        assert policy["manifest-src"] == ["'self'"], path
        page_only = [import_map_source(await response.text())] if path == "/scan" else []
        assert policy["script-src"] == ["'self'", *page_only], path


async def test_the_worker_keeps_every_file_the_till_loads_under_its_hashed_name(
    client: TestClient,
) -> None:
    response = await client.get("/scan-worker.js")
    assert response.status == 200
    assert response.content_type == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    source = await response.text()
    files = json.loads(re.search(r"const FILES = (\[.*\]);", source)[1])
    html = await (await client.get("/scan")).text()
    # Its scripts, style sheet, texts and icon, every module they import, and the modules
    # it imports when the network goes: each through the page's import map.
    (mapping,) = re.findall(r'<script type="importmap">([^<]*)</script>', html)
    mapped = json.loads(mapping)["imports"]
    linked = set(re.findall(r'(?:src|href|content)="(/pages/static/[^"]+)"', html))
    modules = [link for link in linked if link.split("?")[0].endswith(".js")]
    for module in modules:
        body = await (await client.get(module)).text()
        for name in re.findall(r'(?:\bfrom|^import|\bimport\()\s*"\./([\w.-]+\.js)"', body, re.M):
            target = mapped[f"/pages/static/{name}"]
            if target not in linked:
                linked.add(target)
                modules.append(target)
    assert set(files) == linked
    assert any("voucher-check.js?v=" in f for f in files)
    assert any("pricing.js?v=" in f for f in files)
    for file in files:
        assert (await client.get(file)).status == 200, file
    assert re.search(r'const VERSION = "[0-9a-f]{16}";', source)
    again = await client.get("/scan-worker.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


def test_a_release_that_changes_a_file_of_the_till_is_a_new_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def version() -> str:
        pages_api.assets.cache_clear()
        pages_api.scan_worker.cache_clear()
        source = pages_api.scan_worker().body.decode()
        return re.search(r'const VERSION = "([0-9a-f]+)";', source)[1]

    folder = tmp_path / "static"
    shutil.copytree(STATIC_DIR, folder)
    monkeypatch.setattr(pages_api, "STATIC_DIR", folder)
    try:
        before = version()
        assert version() == before
        (folder / "scan.js").write_text((folder / "scan.js").read_text() + "\n// next release\n")
        assert version() != before
    finally:
        monkeypatch.undo()
        pages_api.assets.cache_clear()
        pages_api.scan_worker.cache_clear()
