"""Who changed what: the audit log, read by the bureau."""

from __future__ import annotations

from aiohttp import web

from schemas.audit import AuditEventSchema, AuditListQuerySchema
from schemas.common import page_schema
from service.api.http import (
    operation,
    page_request,
    page_response,
    principal,
    read_query,
    read_time_bounds,
)
from service.app_keys import POOL, SETTINGS
from service.domain.auth import Role
from service.flows import audit as audit_flow

_query = AuditListQuerySchema()
_out = AuditEventSchema()


@operation(
    "List audit events, newest first",
    roles=[Role.ADMIN],
    tags=["audit"],
    query=AuditListQuerySchema,
    responses={200: page_schema(AuditEventSchema, "AuditEventPageSchema")},
)
async def list_audit_events(request: web.Request) -> web.Response:
    query = read_query(request, _query)
    page = page_request(query)
    bounds = read_time_bounds(query, request.app[SETTINGS].timezone)
    filters = {
        "entity_type": query.get("entity"),
        "entity_id": query.get("entity_id"),
        "actor_id": query.get("actor"),
        "actor_type": query.get("actor_type"),
        "occurred_from": bounds["from"],
        "occurred_to": bounds["to"],
    }
    events = await audit_flow.events(request.app[POOL], principal(request), page, filters)
    return page_response(events, _out.dump)
