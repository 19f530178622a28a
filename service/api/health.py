"""Liveness and readiness probes."""

from __future__ import annotations

from aiohttp import web

from schemas.health import HealthSchema, ReadySchema
from service.api.http import json_response, operation
from service.app_keys import POOL, STOPPING
from service.flows import health as health_flow


@operation("Liveness: the process is up", tags=["health"], responses={200: HealthSchema})
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@operation(
    "Readiness: the database answers, every migration is applied, and the process is "
    "not shutting down",
    tags=["health"],
    responses={200: ReadySchema},
    problems=["database_unavailable", "not_ready"],
)
async def readyz(request: web.Request) -> web.Response:
    migrations = await health_flow.readiness(
        request.app[POOL], stopping=request.app[STOPPING].is_set()
    )
    return json_response({"status": "ready", "migrations": migrations})
