"""/console: the staff's page (docs/staff.md), its scripts, style sheet and texts.

The files live in service/pages/console (and service/pages/shared, what the console
shares with /scan and /wallet) and are read and hashed once per process.
Each asset is served as `/console/assets/<name>.<hash>.<ext>`, its hash a digest of its
bytes, so a browser may keep it for a year: a new release changes the name. The scripts
are ES modules importing each other by their plain names (`from "./api.js"`), as written;
the page carries an import map from each plain name to the hashed one, so a changed
module changes its own name and the map, and nothing is rewritten. The page itself is
always revalidated. An old or unknown name is 404.

Every path below /console (but /console/assets/) answers the same page: the page's own
router reads the path and query, so any view can be bookmarked and reloaded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

from service.api.http import OPERATION_ATTR, json_response, operation
from service.api.pages import (
    CONTENT_SECURITY_POLICY,
    PAGE_CACHE,
    Asset,
    Page,
    _answer,
    _asset,
    allowing,
    import_map_script,
    localized,
    negotiate_language,
)
from service.app_keys import SETTINGS
from service.domain import applications, holders, offers, partners
from service.domain.auth import StaffRole, staff_roles_admitted
from service.domain.categories import HOLDER_CATEGORIES
from service.domain.errors import ApiError
from service.domain.language import Said
from service.pages import CONSOLE_DIR, SHARED_DIR

TAGS = ["pages"]
ASSET_PREFIX = "/console/assets/"
#: Hashed names never change meaning: a year in any cache, never revalidated.
ASSET_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Built:
    """The console's files under their hashed names, and the map from plain names."""

    assets: dict[str, Asset]
    names: dict[str, str]


def _hashed_name(name: str, body: bytes) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:12]}{dot}{suffix}"


@cache
def build(directories: tuple[Path, ...] = (CONSOLE_DIR, SHARED_DIR)) -> Built:
    """Read every file once (the console's own and those it shares with the pages) and
    name it by a hash of its own bytes."""
    names: dict[str, str] = {}
    assets: dict[str, Asset] = {}
    for path in sorted(path for directory in directories for path in directory.iterdir()):
        if path.is_file() and path.suffix != ".html":
            assert path.name not in names, f"{path.name}: one name, one file"
            body = path.read_bytes()
            names[path.name] = _hashed_name(path.name, body)
            assets[names[path.name]] = _asset(body, path.suffix)
    return Built(assets=assets, names=names)


def imports(built: Built) -> dict[str, str]:
    """The page's import map: each module's plain URL to its hashed one (the modules'
    relative imports resolve to the plain URLs first)."""
    return {
        ASSET_PREFIX + name: ASSET_PREFIX + hashed
        for name, hashed in sorted(built.names.items())
        if name.endswith(".js")
    }


@cache
def console_page(language: str, timezone: str = "Asia/Shanghai") -> Page:
    """The page in one language, with the programme's time zone (YOUDAI_TIMEZONE) in a
    meta tag: times and dates are shown in it, whatever the browser's own zone."""
    html = localized((CONSOLE_DIR / "console.html").read_text(encoding="utf-8"), language, timezone)
    built = build()
    for name, hashed in built.names.items():
        html = html.replace(f'"{ASSET_PREFIX}{name}"', f'"{ASSET_PREFIX}{hashed}"')
    script, source = import_map_script(imports(built))
    # Every module at once, not import by import: the browser fetches them in parallel.
    preloads = "".join(
        f'<link rel="modulepreload" href="{ASSET_PREFIX}{hashed}">\n'
        for name, hashed in sorted(built.names.items())
        if name.endswith(".js") and name != "app.js"
    )
    # The map comes before every module and preload, so each import resolves through it.
    html = html.replace(
        '<link rel="stylesheet"',
        f'{script}\n{preloads}<link rel="stylesheet"',
        1,
    )
    return Page(_asset(html.encode("utf-8"), ".html"), allowing(CONTENT_SECURITY_POLICY, source))


def _serve(request: web.Request) -> web.Response:
    language = negotiate_language(request.headers.get("Accept-Language"))
    page = console_page(language, request.app[SETTINGS].timezone.key)
    return _answer(request, page.asset, PAGE_CACHE, vary="Accept-Language", policy=page.policy)


@operation(
    "The staff console (every path below /console answers this page)",
    tags=TAGS,
    responses={
        200: {
            "description": "The HTML page (Chinese or English by Accept-Language; the page "
            "remembers a choice). Sent with a strict Content-Security-Policy.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        304: "Not modified (If-None-Match matched the ETag)",
    },
)
async def console(request: web.Request) -> web.Response:
    """Sign-in, dashboard, partners and their tills' keys, offers, holders, redemptions,
    reports, audit and staff: each calls the /v1 API with the staff session cookie."""
    return _serve(request)


@operation(
    "A view of the console (the same page as /console: its router reads the path)",
    tags=TAGS,
    responses={
        200: {
            "description": "The HTML page of /console.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        304: "Not modified (If-None-Match matched the ETag)",
    },
)
async def console_view(request: web.Request) -> web.Response:
    """Any path below /console, so a view with its filters can be bookmarked and reloaded."""
    return _serve(request)


@operation(
    "A file of the console, by its content-hashed name",
    tags=TAGS,
    responses={
        200: {
            "description": "The file, cached for a year (its name changes with its bytes)",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        304: "Not modified (If-None-Match matched the ETag)",
    },
    problems=["not_found"],
)
async def console_asset(request: web.Request) -> web.Response:
    asset = build().assets.get(request.match_info["name"])
    if asset is None:
        raise ApiError(
            "not_found",
            Said("No such file (an older release's name?)", "没有此文件（可能是旧版本的文件名）"),
        )
    return _answer(request, asset, ASSET_CACHE)


def console_model(router: web.UrlDispatcher) -> dict[str, Any]:
    """What the console must know that the service decides: each entity's status moves,
    the staff roles each operation admits (by `may_call`, as the API checks) and the
    API's enumerations. The console offers what this says, so it never disagrees with
    the API (the JS copies it replaces did: they offered moves the API refuses)."""
    operations: dict[str, list[str]] = {}
    for route in router.routes():
        op = getattr(route.handler, OPERATION_ATTR, None)
        if op is None or not op.roles or route.method == "HEAD":
            continue
        staff = staff_roles_admitted(
            op.roles, read_only=route.method == "GET", personal_data=op.personal_data
        )
        template = route.resource.canonical if route.resource is not None else ""
        operations[f"{route.method} {template}"] = [str(role) for role in staff]
    lifecycles = {
        name: {
            status: [next for next in cycle.statuses if next in moves]
            for status, moves in cycle.moves.items()
        }
        for name, cycle in (
            ("partner", partners.LIFECYCLE),
            ("offer", offers.LIFECYCLE),
            ("holder", holders.LIFECYCLE),
        )
    }
    enums = {
        "partner_category": list(partners.CATEGORIES),
        "holder_category": list(HOLDER_CATEGORIES),
        "offer_kind": list(offers.KINDS),
        "offer_kind_fields": {kind: list(names) for kind, names in offers.KIND_FIELDS.items()},
        "period": list(offers.PERIODS),
        "staff_role": [str(role) for role in StaffRole],
        "application_status": list(applications.STATUSES),
    }
    return {"lifecycles": lifecycles, "operations": operations, "enums": enums}


@operation(
    "What the console must know that the service decides",
    tags=TAGS,
    responses={
        200: {
            "description": "`lifecycles`: each entity's status moves; `operations`: the staff "
            "roles each operation (`METHOD /path`) admits. Revalidated on every load.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def model_file(request: web.Request) -> web.Response:
    return json_response(console_model(request.app.router), headers={"Cache-Control": PAGE_CACHE})


def console_routes() -> list[web.AbstractRouteDef]:
    return [
        web.get(ASSET_PREFIX + "{name}", console_asset),
        web.get("/console/model.json", model_file),
        web.get("/console", console),
        web.get("/console/{view:.*}", console_view),
    ]
