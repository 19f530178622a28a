"""Card holders: enrolled, found, suspended and revoked by the bureau (their CSV import:
holder_imports)."""

from __future__ import annotations

import re

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
    principal,
    read_json,
    read_query,
)
from service.app_keys import POOL
from service.db import holders as holders_db
from service.db.pagination import page_of
from service.domain.auth import Role
from service.domain.errors import ApiError

_create = HolderCreateSchema()
_update = HolderUpdateSchema()
_query = HolderListQuerySchema()
_out = HolderSchema()

TAGS = ["holders"]

_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,100}")


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
    async with request.app[POOL].acquire() as conn:
        row = await holders_db.create_holder(conn, fields, principal(request))
    return json_response(_out.dump(row), status=201)


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
    async with request.app[POOL].acquire() as conn:
        rows = await holders_db.list_holders(
            conn,
            page,
            category=query.get("category"),
            status=query.get("status"),
            region=query.get("region"),
            q=query.get("q"),
        )
    return json_response(page_of(rows, page, _out.dump))


@operation(
    "Get a card holder",
    roles=[Role.ADMIN],
    tags=TAGS,
    responses={200: HolderSchema},
    problems=["not_found"],
)
async def get_holder(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        row = await holders_db.get_holder(conn, _holder_id(request))
    if row is None:
        raise ApiError("not_found", "No such holder")
    return json_response(_out.dump(row))


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
    async with request.app[POOL].acquire() as conn:
        row = await holders_db.update_holder(conn, _holder_id(request), changes, principal(request))
    if row is None:
        raise ApiError("not_found", "No such holder")
    return json_response(_out.dump(row))


def _holder_id(request: web.Request) -> str:
    """The id in the path; one the service could never have issued is 404 at once
    (a NUL byte would otherwise reach PostgreSQL, which refuses it)."""
    holder_id = request.match_info["holder_id"]
    if not _ID_SHAPE.fullmatch(holder_id):
        raise ApiError("not_found", "No such holder")
    return holder_id
