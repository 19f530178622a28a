"""API keys of partners and their scanners (admin keys come from the CLI)."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from schemas.common import PageQuerySchema
from schemas.keys import KeyCreatedSchema, KeyCreateSchema, KeyPageSchema, KeySchema
from service.api.http import (
    json_response,
    operation,
    page_request,
    page_response,
    principal,
    read_json,
    read_query,
)
from service.app_keys import KEY_CACHE, POOL
from service.domain.auth import AnyRole, Role, StaffRole
from service.flows import keys as keys_flow

_create = KeyCreateSchema()
_query = PageQuerySchema()
_out = KeySchema()
_created = KeyCreatedSchema()

TAGS = ["keys"]
#: Admins for any partner; a partner_manager for its own partner's scanner keys.
ROLES: list[AnyRole] = [Role.ADMIN, StaffRole.PARTNER_MANAGER]


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
    key, secret = await keys_flow.issue_for_partner(
        request.app[POOL],
        principal(request),
        request.match_info["partner_id"],
        fields["role"],
        fields["label"],
    )
    return json_response(_created.dump({**asdict(key), "key": secret}), status=201)


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
    keys = await keys_flow.list_page(
        request.app[POOL], principal(request), request.match_info["partner_id"], page
    )
    return page_response(keys, _out.dump)


@operation(
    "Revoke a key; it stops working at once",
    roles=ROLES,
    tags=TAGS,
    responses={200: KeySchema},
    problems=["not_found"],
)
async def revoke_key(request: web.Request) -> web.Response:
    key = await keys_flow.revoke(
        request.app[POOL], principal(request), request.match_info["key_id"], request.app[KEY_CACHE]
    )
    return json_response(_out.dump(key))
