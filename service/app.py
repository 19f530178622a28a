"""The application factory: middlewares, the route table, and the resources opened
and closed with the app."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from service.api import docs, health, keys, partners
from service.api.middleware import authenticate, request_context
from service.app_keys import DSN, POOL, SETTINGS
from service.config import Settings
from service.db.pool import create_pool

#: Bodies above 1 MiB are refused with 413 before a handler sees them.
MAX_BODY_BYTES = 1024 * 1024


def routes() -> list[web.AbstractRouteDef]:
    """Every route of the service, top to bottom."""
    return [
        web.get("/healthz", health.healthz),
        web.get("/readyz", health.readyz),
        *docs.docs_routes(),
        web.post("/v1/partners", partners.create_partner),
        web.get("/v1/partners", partners.list_partners),
        web.get("/v1/partners/{partner_id}", partners.get_partner),
        web.patch("/v1/partners/{partner_id}", partners.update_partner),
        web.post("/v1/partners/{partner_id}/keys", keys.create_key),
        web.get("/v1/partners/{partner_id}/keys", keys.list_keys),
        web.delete("/v1/keys/{key_id}", keys.revoke_key),
        # holders
        # offers
    ]


def create_app(settings: Settings, dsn: str) -> web.Application:
    app = web.Application(
        middlewares=[request_context, authenticate],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS] = settings
    app[DSN] = dsn
    app.add_routes(routes())
    app[docs.OPENAPI_KEY] = docs.build_openapi(app)
    app.cleanup_ctx.append(_database_pool)
    return app


async def _database_pool(app: web.Application) -> AsyncIterator[None]:
    app[POOL] = await create_pool(app[SETTINGS], app[DSN])
    yield
    await app[POOL].close()
