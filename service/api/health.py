"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from aiohttp import web

from schemas.health import HealthSchema, ReadySchema
from service.api.http import json_response, operation
from service.app_keys import POOL
from service.db.migrate import available_migrations, pending_migrations
from service.domain.errors import ApiError

#: Readiness must answer fast even when PostgreSQL hangs: probes have short timeouts.
READY_TIMEOUT = 2.0


@operation("Liveness: the process is up", tags=["health"], responses={200: HealthSchema})
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@operation(
    "Readiness: the database answers and every migration is applied",
    tags=["health"],
    responses={200: ReadySchema},
    problems=["database_unavailable", "not_ready"],
)
async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with request.app[POOL].acquire() as conn:
                pending = await pending_migrations(conn)
    except ApiError:
        raise
    except Exception:
        raise ApiError("database_unavailable", "PostgreSQL does not answer") from None
    if pending:
        raise ApiError("not_ready", f"{len(pending)} migration(s) pending: run `youdai migrate`")
    return json_response({"status": "ready", "migrations": len(available_migrations())})
