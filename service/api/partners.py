"""Partners: enrolled and managed by the bureau; a partner key may read its own."""

from __future__ import annotations

from aiohttp import web

from schemas.partners import (
    PartnerCreateSchema,
    PartnerListQuerySchema,
    PartnerPageSchema,
    PartnerSchema,
    PartnerUpdateSchema,
)
from service.api.http import (
    json_response,
    operation,
    page_request,
    page_response,
    principal,
    read_json,
    read_query,
)
from service.app_keys import POOL, SETTINGS
from service.domain.auth import Role
from service.flows import partners as partners_flow

_create = PartnerCreateSchema()
_update = PartnerUpdateSchema()
_query = PartnerListQuerySchema()
_out = PartnerSchema()

TAGS = ["partners"]


@operation(
    "Enrol a partner (status pending)",
    roles=[Role.ADMIN],
    tags=TAGS,
    body=PartnerCreateSchema,
    responses={201: PartnerSchema},
)
async def create_partner(request: web.Request) -> web.Response:
    fields = await read_json(request, _create)
    partner = await partners_flow.enrol(
        request.app[POOL], principal(request), fields, regions=request.app[SETTINGS].regions
    )
    return json_response(_out.dump(partner), status=201)


@operation(
    "List partners",
    roles=[Role.ADMIN],
    tags=TAGS,
    query=PartnerListQuerySchema,
    responses={200: PartnerPageSchema},
)
async def list_partners(request: web.Request) -> web.Response:
    """For admin callers only (docs/api.md): a partner reads its own partner by id."""
    query = read_query(request, _query)
    page = await partners_flow.list_page(
        request.app[POOL],
        page_request(query),
        status=query.get("status"),
        category=query.get("category"),
        name_contains=query.get("q"),
    )
    return page_response(page, _out.dump)


@operation(
    "Get a partner",
    roles=[Role.ADMIN, Role.PARTNER],
    tags=TAGS,
    responses={200: PartnerSchema},
    problems=["not_found"],
)
async def get_partner(request: web.Request) -> web.Response:
    partner = await partners_flow.get(
        request.app[POOL], principal(request), request.match_info["partner_id"]
    )
    return json_response(_out.dump(partner))


@operation(
    "Change a partner's details or status",
    roles=[Role.ADMIN],
    tags=TAGS,
    body=PartnerUpdateSchema,
    responses={200: PartnerSchema},
    problems=["not_found", "conflict"],
)
async def update_partner(request: web.Request) -> web.Response:
    """Status follows pending → active ⇄ suspended → terminated; other moves are 409 conflict."""
    changes = await read_json(request, _update)
    partner = await partners_flow.change(
        request.app[POOL],
        principal(request),
        request.match_info["partner_id"],
        changes,
        regions=request.app[SETTINGS].regions,
    )
    return json_response(_out.dump(partner))
