"""The public directory (docs/api.md): anyone may ask where a card is welcome."""

from __future__ import annotations

import hashlib
from dataclasses import asdict

from aiohttp import web

from schemas.directory import DirectoryPageSchema, DirectoryQuerySchema
from service.api.http import dumps, operation, page_request, read_query
from service.app_keys import CLOCK, POOL, SETTINGS
from service.flows import directory as directory_flow

_query = DirectoryQuerySchema()
_out = DirectoryPageSchema()

#: Shared caches may keep it a minute: an offer that ends shows a minute longer at most.
CACHE_CONTROL = "public, max-age=60"


@operation(
    "Where holders can use their card: active partners with an offer active now",
    tags=["directory"],
    query=DirectoryQuerySchema,
    responses={
        200: DirectoryPageSchema,
        304: {"description": "Not modified: the `ETag` sent in `If-None-Match` still holds"},
    },
)
async def directory(request: web.Request) -> web.Response:
    """Anyone, no key. Each partner with its address, public phone, opening hours and the
    offers a holder may use now (`holder_category`: of that category), each with its
    terms in words (`terms.zh`, `terms.en`). Never counters, budgets, limits left, keys,
    contacts or holders. Cacheable for a minute; `If-None-Match` with the `ETag` answers
    304."""
    query = read_query(request, _query)
    settings = request.app[SETTINGS]
    page = await directory_flow.directory(
        request.app[POOL], page_request(query), query, request.app[CLOCK](), settings.timezone
    )
    body = dumps(
        _out.dump(
            {"items": [asdict(entry) for entry in page.items], "next_cursor": page.next_cursor}
        )
    ).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}
    wanted = _tags(request.headers.get("If-None-Match", ""))
    if etag in wanted or "*" in wanted:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


def _tags(header: str) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compared as strong)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
