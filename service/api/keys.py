"""API keys of partners and their scanners (admin keys come from the CLI)."""

from __future__ import annotations

from aiohttp import web

from schemas.common import PageQuerySchema
from schemas.keys import KeyCreatedSchema, KeyCreateSchema, KeyPageSchema, KeySchema
from service.api.http import (
    json_response,
    operation,
    page_request,
    principal,
    read_json,
    read_query,
)
from service.app_keys import POOL
from service.db import keys as keys_db
from service.db import partners as partners_db
from service.db.pagination import page_of
from service.domain.auth import Role, StaffRole
from service.domain.errors import ApiError
from service.domain.staff import check_key_access

_create = KeyCreateSchema()
_query = PageQuerySchema()
_out = KeySchema()
_created = KeyCreatedSchema()

TAGS = ["keys"]
#: Admins for any partner; a partner_manager for its own partner's scanner keys.
ROLES = [Role.ADMIN, StaffRole.PARTNER_MANAGER]


@operation(
    "Issue a partner or scanner key",
    roles=ROLES,
    tags=TAGS,
    body=KeyCreateSchema,
    responses={201: KeyCreatedSchema},
    problems=["not_found"],
)
async def create_key(request: web.Request) -> web.Response:
    """The secret `key` is in this answer only; it is stored as a SHA-256 hash."""
    fields = await read_json(request, _create)
    check_key_access(principal(request), request.match_info["partner_id"], fields["role"])
    async with request.app[POOL].acquire() as conn:
        await partners_db.require_partner(conn, request.match_info["partner_id"])
        row, secret = await keys_db.create_key(
            conn,
            role=Role(fields["role"]),
            partner_id=request.match_info["partner_id"],
            label=fields["label"],
            actor=principal(request),
        )
    return json_response(_created.dump({**row, "key": secret}), status=201)


@operation(
    "List a partner's keys (never their secrets)",
    roles=ROLES,
    tags=TAGS,
    query=PageQuerySchema,
    responses={200: KeyPageSchema},
    problems=["not_found"],
)
async def list_keys(request: web.Request) -> web.Response:
    query = read_query(request, _query)
    page = page_request(query)
    check_key_access(principal(request), request.match_info["partner_id"], None)
    async with request.app[POOL].acquire() as conn:
        await partners_db.require_partner(conn, request.match_info["partner_id"])
        rows = await keys_db.list_keys(conn, request.match_info["partner_id"], page)
    return json_response(page_of(rows, page, _out.dump))


@operation(
    "Revoke a key; it stops working at once",
    roles=ROLES,
    tags=TAGS,
    responses={200: KeySchema},
    problems=["not_found"],
)
async def revoke_key(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        key = await keys_db.get_key(conn, request.match_info["key_id"])
        if key is None:
            raise ApiError("not_found", "No such key")
        check_key_access(principal(request), key["partner_id"], key["role"])
        row = await keys_db.revoke_key(conn, request.match_info["key_id"], principal(request))
    if row is None:
        raise ApiError("not_found", "No such key")
    return json_response(_out.dump(row))
