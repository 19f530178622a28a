"""GET /metrics: Prometheus text, for the cluster's scraper (no key: it holds no holder data)."""

from __future__ import annotations

from aiohttp import web

from service import metrics
from service.api.http import operation
from service.app_keys import POOL

_TEXT = {"text/plain": {"schema": {"type": "string"}}}


@operation(
    "Prometheus metrics: requests, redemptions, discounts, pool, token failures",
    tags=["health"],
    responses={200: {"description": "Prometheus text exposition format 0.0.4", "content": _TEXT}},
)
async def metrics_text(request: web.Request) -> web.Response:
    """Counts of every worker when served with `--workers N`. Labels hold route templates
    and problem codes only, never ids, card numbers or names."""
    body = metrics.exposition(request.app.get(POOL))
    response = web.Response(body=body)
    response.headers["Content-Type"] = metrics.CONTENT_TYPE
    return response
