"""The /scan and /wallet pages and their static files (service/pages/static, and
service/pages/shared: what they share with the console).

Nothing comes from outside the service, and the Content-Security-Policy says so:
scripts and styles only from files served here, never inline but for the page's import
map, allowed by its hash. Each file is read once; its ETag is a hash of its bytes. The
pages link their files with that hash in the query string (`?v=`), so a browser keeps a
file for a year without ever mixing an old script with a new page. The scripts are ES
modules importing each other by their plain names (`from "./api.js"`), as written; the
page's import map sends each plain name to the hashed link.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from html import escape

from aiohttp import web

from service.api.http import operation
from service.app_keys import SETTINGS
from service.domain.errors import ApiError
from service.domain.language import Said
from service.domain.negotiation import preferred_language
from service.pages import SHARED_DIR, STATIC_DIR

TAGS = ["pages"]
STATIC_PREFIX = "/pages/static/"
PAGES = ("scan", "wallet")
#: The languages the pages speak, as `<html lang>` values; the first is the default.
LANGUAGES = ("zh-CN", "en")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: The pages rendered by the server for the public (/directory, /join): no script at all,
#: their own style sheet, and forms that post back here.
SERVER_RENDERED_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: Files: an hour in any cache, then asked again (answered 304 while unchanged).
ASSET_CACHE = "public, max-age=3600, must-revalidate"
#: A file asked for by the hash its page links it with (`?v=<hash>`): that URL never
#: changes meaning, so a year in any cache, never revalidated.
HASHED_ASSET_CACHE = "public, max-age=31536000, immutable"
#: Pages: always revalidated, so a new release's page (and its asset links) shows at once.
PAGE_CACHE = "no-cache"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
}
#: The till's service worker, at the root: a worker's scope can be no wider than the
#: folder it is served from, and this one must cover /scan (docs/pages.md).
WORKER_PATH = "/scan-worker.js"
WORKER_FILE = "scan-worker.js"
#: Pages and the worker say which worker script they allow: only this service's own.
SCAN_POLICY = CONTENT_SECURITY_POLICY + "; worker-src 'self'; manifest-src 'self'"


#: Text compresses to a third or less; images here are SVG, text too.
_COMPRESSIBLE = frozenset(_TYPES)


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    #: The body compressed once, when the file is read (never per request); None when
    #: gzip would not make it smaller.
    gzipped: bytes | None = None

    @property
    def gzip_etag(self) -> str:
        """A representation of its own (RFC 9110 8.8.3): the compressed bytes differ."""
        return self.etag[:-1] + '-gzip"'


def _asset(body: bytes, suffix: str) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:32]
    content_type = _TYPES.get(suffix) or mimetypes.types_map.get(suffix, "application/octet-stream")
    gzipped = gzip.compress(body, compresslevel=9, mtime=0) if suffix in _COMPRESSIBLE else None
    if gzipped is not None and len(gzipped) >= len(body):
        gzipped = None
    return Asset(body=body, content_type=content_type, etag=f'"{digest}"', gzipped=gzipped)


@cache
def assets() -> dict[str, Asset]:
    """Every static file but the pages themselves, by file name: the pages' own and those
    they share with the console (shared/)."""
    return {
        path.name: _asset(path.read_bytes(), path.suffix)
        for path in sorted([*STATIC_DIR.iterdir(), *SHARED_DIR.iterdir()])
        if path.is_file() and path.suffix != ".html" and path.name != WORKER_FILE
    }


def version_of(asset: Asset) -> str:
    """The hash a page links a file with (`?v=`): the start of its ETag's digest."""
    return asset.etag[1:13]


def hashed_link(file_name: str) -> str:
    """A static file's link as the pages write it: its hash in the query string."""
    return f"{STATIC_PREFIX}{file_name}?v={version_of(assets()[file_name])}"


#: A module's imports of its neighbours: `from "./x.js"` or `import "./x.js"` (loaded with
#: it), and `import("./x.js")` (loaded when asked for).
_STATIC_IMPORT = re.compile(r'(?:\bfrom|^import)\s*"\./([\w.-]+\.js)"', re.MULTILINE)
_DYNAMIC_IMPORT = re.compile(r'\bimport\(\s*"\./([\w.-]+\.js)"\s*\)')


def modules_loaded(entries: list[str], *, dynamic: bool) -> list[str]:
    """Every module the entry modules load (with those `import()` asks for when
    `dynamic`), the entries first: what a page preloads and the till's worker keeps."""
    found = list(dict.fromkeys(entries))
    for name in found:
        source = assets()[name].body.decode("utf-8")
        imported = _STATIC_IMPORT.findall(source)
        if dynamic:
            imported += _DYNAMIC_IMPORT.findall(source)
        found.extend(module for module in imported if module not in found)
    return found


def _entries(html: str) -> list[str]:
    """The modules a page starts (`<script type="module" src>`)."""
    pattern = r'<script type="module" src="' + re.escape(STATIC_PREFIX) + r'([\w.-]+)"'
    return re.findall(pattern, html)


def import_map_script(imports: dict[str, str]) -> tuple[str, str]:
    """A page's import map (each module's plain URL to its hashed one), and the
    script-src source that allows this one inline script: its hash."""
    mapping = json.dumps({"imports": imports}, separators=(",", ":"))
    digest = base64.b64encode(hashlib.sha256(mapping.encode("utf-8")).digest()).decode()
    return f'<script type="importmap">{mapping}</script>', f"'sha256-{digest}'"


def allowing(policy: str, script_source: str) -> str:
    """`policy` with one more script-src source (the import map's hash)."""
    return policy.replace("script-src 'self'", f"script-src 'self' {script_source}", 1)


@cache
def scan_worker() -> Asset:
    """The till's service worker with the till's files (scan.html's links and every
    module they load, now or when the network goes, hashed) and a version naming them
    all: a release that changes any file is a new worker, whose cache replaces the old
    one."""
    html = (STATIC_DIR / "scan.html").read_text(encoding="utf-8")
    names = re.findall(r'"' + re.escape(STATIC_PREFIX) + r'([\w.-]+)"', html)
    names += modules_loaded(_entries(html), dynamic=True)
    files = [hashed_link(name) for name in dict.fromkeys(names)]
    version = hashlib.sha256(html.encode("utf-8") + " ".join(files).encode("ascii")).hexdigest()
    source = (STATIC_DIR / WORKER_FILE).read_text(encoding="utf-8")
    source = source.replace('const VERSION = "dev";', f'const VERSION = "{version[:16]}";', 1)
    source = source.replace("const FILES = [];", f"const FILES = {json.dumps(files)};", 1)
    return _asset(source.encode("utf-8"), ".js")


@dataclass(frozen=True, slots=True)
class Page:
    asset: Asset
    #: The page's policy: its one inline script, the import map, allowed by its hash.
    policy: str


def localized(html: str, language: str, timezone: str) -> str:
    """A page's HTML in one language (`<html lang>`) with the programme's time zone in its
    meta tag (dates are shown in it, whatever the browser's own zone)."""
    html = html.replace('<html lang="zh-CN">', f'<html lang="{language}">', 1)
    return html.replace(
        '<meta name="youdai-timezone" content="Asia/Shanghai">',
        f'<meta name="youdai-timezone" content="{escape(timezone)}">',
        1,
    )


def options_html(choices: Mapping[str, str], chosen: str | None, empty_label: str) -> str:
    """`<option>`s of a server-rendered select: an empty first choice, then `choices`
    (value → label), the `chosen` one selected."""
    options = [f'<option value="">{escape(empty_label)}</option>']
    for value, label in choices.items():
        selected = " selected" if value == chosen else ""
        options.append(f'<option value="{escape(value)}"{selected}>{escape(label)}</option>')
    return "".join(options)


@cache
def page(name: str, language: str, timezone: str = "Asia/Shanghai", help_phone: str = "") -> Page:
    """A page in one language, its asset links carrying each asset's hash, its import map
    and module preloads, and the deployment's programme time zone (dates are shown in it,
    whatever the phone's) and help phone number (YOUDAI_HELP_PHONE) in its meta tags."""
    html = localized((STATIC_DIR / f"{name}.html").read_text(encoding="utf-8"), language, timezone)
    html = html.replace(
        '<meta name="youdai-help-phone" content="">',
        f'<meta name="youdai-help-phone" content="{escape(help_phone)}">',
        1,
    )
    entries = _entries(html)
    for file_name in assets():
        html = html.replace(f'"{STATIC_PREFIX}{file_name}"', f'"{hashed_link(file_name)}"')
    # Every module the page may load, now or when asked (the till's offline check).
    imports = {
        STATIC_PREFIX + module: hashed_link(module)
        for module in modules_loaded(entries, dynamic=True)
    }
    script, source = import_map_script(imports)
    # The modules the page loads at once, fetched in parallel rather than import by import.
    preloads = "".join(
        f'<link rel="modulepreload" href="{hashed_link(module)}">\n'
        for module in modules_loaded(entries, dynamic=False)
        if module not in entries
    )
    # The map comes before every module and preload, so each import resolves through it.
    html = html.replace('<link rel="stylesheet"', f'{script}\n{preloads}<link rel="stylesheet"', 1)
    policy = SCAN_POLICY if name == "scan" else CONTENT_SECURITY_POLICY
    return Page(_asset(html.encode("utf-8"), ".html"), allowing(policy, source))


def negotiate_language(accept_language: str | None) -> str:
    """The page language for an Accept-Language header: Chinese unless English is preferred."""
    return preferred_language(accept_language, {"zh": "zh-CN", "en": "en"}, LANGUAGES[0])


def wants_english(request: web.Request, chosen: str | None) -> bool:
    """A server-rendered page's language: `lang` when the visitor chose one, else
    Accept-Language (Chinese unless English is preferred)."""
    return (chosen or negotiate_language(request.headers.get("Accept-Language"))) == "en"


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether Accept-Encoding admits gzip (named or `*`, with a q above 0)."""
    for part in (accept_encoding or "").split(","):
        coding, _, parameters = part.partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        name, _, value = parameters.strip().partition("=")
        try:
            return name.strip().lower() != "q" or float(value) > 0
        except ValueError:
            return False
    return False


def _answer(
    request: web.Request,
    asset: Asset,
    cache_control: str,
    *,
    vary: str = "",
    policy: str = CONTENT_SECURITY_POLICY,
) -> web.Response:
    """The asset, gzip-compressed for a client that takes it, or 304 when its ETag matches."""
    compressed = asset.gzipped is not None and accepts_gzip(request.headers.get("Accept-Encoding"))
    etag = asset.gzip_etag if compressed else asset.etag
    varies = ", ".join(filter(None, [vary, "Accept-Encoding" if asset.gzipped else ""]))
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": policy,
        "ETag": etag,
        "Cache-Control": cache_control,
    }
    if varies:
        headers["Vary"] = varies
    if _matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = asset.content_type
    if compressed:
        assert asset.gzipped is not None
        return web.Response(body=asset.gzipped, headers={**headers, "Content-Encoding": "gzip"})
    return web.Response(body=asset.body, headers=headers)


def _serve_page(request: web.Request, name: str) -> web.Response:
    language = negotiate_language(request.headers.get("Accept-Language"))
    settings = request.app[SETTINGS]
    served = page(name, language, settings.timezone.key, settings.help_phone)
    return _answer(request, served.asset, PAGE_CACHE, vary="Accept-Language", policy=served.policy)


_PAGE_RESPONSES = {
    200: {
        "description": "The HTML page (Chinese or English by Accept-Language; a toggle on the "
        "page switches). Sent with a strict Content-Security-Policy.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
    304: "Not modified (If-None-Match matched the ETag)",
}


@operation("The till's scanner page", tags=TAGS, responses=_PAGE_RESPONSES)
async def scan_page(request: web.Request) -> web.Response:
    """Asks once for a scanner key (kept in the browser), then reads voucher codes from a
    USB scanner or by hand, previews, redeems and reverses the last redemption."""
    return _serve_page(request, "scan")


@operation("The holder's voucher page", tags=TAGS, responses=_PAGE_RESPONSES)
async def wallet_page(request: web.Request) -> web.Response:
    """Sign in with card number and PIN, claim offers, show a voucher's QR code."""
    return _serve_page(request, "wallet")


@operation(
    "A static file of the pages (script, style sheet, texts)",
    tags=TAGS,
    responses={
        200: {
            "description": "The file, with an ETag (hash of its bytes) and Cache-Control",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        304: "Not modified (If-None-Match matched the ETag)",
    },
    problems=["not_found"],
)
async def static_file(request: web.Request) -> web.Response:
    asset = assets().get(request.match_info["name"])
    if asset is None:
        raise ApiError("not_found", Said("No such file", "没有此文件"))
    hashed = request.query.get("v") == version_of(asset)
    return _answer(request, asset, HASHED_ASSET_CACHE if hashed else ASSET_CACHE)


@operation(
    "The till's service worker",
    tags=TAGS,
    responses={
        200: {
            "description": "The script that keeps /scan's files for the day the till has no "
            "network (scope /scan). Revalidated on every visit, so a release replaces it.",
            "content": {"text/javascript": {"schema": {"type": "string"}}},
        },
        304: "Not modified (If-None-Match matched the ETag)",
    },
)
async def scan_worker_script(request: web.Request) -> web.Response:
    """/scan registers it; it answers /scan and its files from its cache when offline."""
    return _answer(request, scan_worker(), PAGE_CACHE, policy=SCAN_POLICY)


def page_routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/scan", scan_page),
        web.get(WORKER_PATH, scan_worker_script),
        web.get("/wallet", wallet_page),
        web.get(STATIC_PREFIX + "{name}", static_file),
    ]
