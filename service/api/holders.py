"""Card holders: enrolled, found, suspended and revoked by the bureau (their CSV import:
holder_imports)."""

from __future__ import annotations

from aiohttp import web

from schemas.holders import (
    HolderCreateSchema,
    HolderListQuerySchema,
    HolderPageSchema,
    HolderSchema,
    HolderUpdateSchema,
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
from service.app_keys import POOL
from service.domain.auth import Role
from service.flows import holders as holders_flow

_create = HolderCreateSchema()
_update = HolderUpdateSchema()
_query = HolderListQuerySchema()
_out = HolderSchema()

TAGS = ["holders"]


@operation(
    "Enrol a card holder (status active)",
    roles=[Role.ADMIN],
    tags=TAGS,
    body=HolderCreateSchema,
    responses={201: HolderSchema},
    problems=["conflict"],
)
async def create_holder(request: web.Request) -> web.Response:
    """The PIN is stored as an argon2id hash and never returned; a card number already
    enrolled is 409 conflict."""
    fields = await read_json(request, _create)
    holder = await holders_flow.enrol(request.app[POOL], principal(request), fields)
    return json_response(_out.dump(holder), status=201)


@operation(
    "Find card holders",
    roles=[Role.ADMIN],
    tags=TAGS,
    query=HolderListQuerySchema,
    responses={200: HolderPageSchema},
)
async def list_holders(request: web.Request) -> web.Response:
    query = read_query(request, _query)
    page = page_request(query)
    holders = await holders_flow.find(
        request.app[POOL],
        page,
        category=query.get("category"),
        status=query.get("status"),
        region=query.get("region"),
        q=query.get("q"),
    )
    return page_response(holders, _out.dump)


@operation(
    "Get a card holder",
    roles=[Role.ADMIN],
    tags=TAGS,
    responses={200: HolderSchema},
    problems=["not_found"],
)
async def get_holder(request: web.Request) -> web.Response:
    holder = await holders_flow.get(request.app[POOL], request.match_info["holder_id"])
    return json_response(_out.dump(holder))


@operation(
    "Change a card holder's details, PIN or status",
    roles=[Role.ADMIN],
    tags=TAGS,
    body=HolderUpdateSchema,
    responses={200: HolderSchema},
    problems=["not_found", "conflict"],
)
async def update_holder(request: web.Request) -> web.Response:
    """Status follows active ⇄ suspended, either → revoked; nothing leaves revoked (409
    conflict). A new PIN also clears a sign-in lockout."""
    changes = await read_json(request, _update)
    holder = await holders_flow.change(
        request.app[POOL], principal(request), request.match_info["holder_id"], changes
    )
    return json_response(_out.dump(holder))
