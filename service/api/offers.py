"""Offers: a partner key manages its own partner's offers; an admin key any partner's."""

from __future__ import annotations

from aiohttp import web

from schemas.offers import (
    OfferCreateSchema,
    OfferListQuerySchema,
    OfferPageSchema,
    OfferSchema,
    OfferUpdateSchema,
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
from service.db import offers as offers_db
from service.db.pagination import page_of
from service.domain.auth import Principal, Role
from service.domain.errors import ApiError, validation_error
from service.domain.offers import check_new_offer

_create = OfferCreateSchema()
_update = OfferUpdateSchema()
_query = OfferListQuerySchema()
_out = OfferSchema()

TAGS = ["offers"]
ROLES = [Role.ADMIN, Role.PARTNER]


def _owner_of_new_offer(caller: Principal, partner_id: str | None) -> str | None:
    """Rule 5: a partner key creates for itself only; an admin key names the partner."""
    if caller.is_admin:
        if partner_id is None:
            raise validation_error("partner_id", "required when an admin key creates an offer")
        return partner_id
    if partner_id is not None and partner_id != caller.partner_id:
        raise ApiError("forbidden", "A partner key creates offers for its own partner only")
    return caller.partner_id


def _offer_id(request: web.Request) -> str:
    """The id in the path; an id with NUL (which PostgreSQL text cannot hold) names no offer."""
    offer_id = request.match_info["offer_id"]
    if "\x00" in offer_id:
        raise ApiError("not_found", "No such offer")
    return offer_id


def _own_only(caller: Principal) -> str | None:
    return None if caller.is_admin else caller.partner_id


@operation(
    "Create an offer (status draft)",
    roles=ROLES,
    tags=TAGS,
    body=OfferCreateSchema,
    responses={201: OfferSchema},
    problems=["validation_error", "not_found", "conflict"],
)
async def create_offer(request: web.Request) -> web.Response:
    """A partner key's own partner by default; a terminated partner gets no new offers."""
    fields = await read_json(request, _create)
    caller = principal(request)
    fields["partner_id"] = _owner_of_new_offer(caller, fields.get("partner_id"))
    check_new_offer(fields)
    async with request.app[POOL].acquire() as conn:
        row = await offers_db.create_offer(conn, fields, caller)
    return json_response(_out.dump(row), status=201)


@operation(
    "List offers",
    roles=ROLES,
    tags=TAGS,
    query=OfferListQuerySchema,
    responses={200: OfferPageSchema},
    problems=["validation_error"],
)
async def list_offers(request: web.Request) -> web.Response:
    """A partner key sees only its own partner's offers, whatever partner_id it asks for."""
    query = read_query(request, _query)
    page = page_request(query)
    async with request.app[POOL].acquire() as conn:
        rows = await offers_db.list_offers(
            conn,
            page,
            status=query.get("status"),
            partner_id=query.get("partner_id"),
            title_contains=query.get("q"),
            open_to_category=query.get("category"),
            only_partner_id=_own_only(principal(request)),
        )
    return json_response(page_of(rows, page, _out.dump))


@operation(
    "Get an offer",
    roles=ROLES,
    tags=TAGS,
    responses={200: OfferSchema},
    problems=["not_found"],
)
async def get_offer(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        row = await offers_db.get_offer(conn, _offer_id(request))
    if row is None or not principal(request).can_see_partner(row["partner_id"]):
        raise ApiError("not_found", "No such offer")
    return json_response(_out.dump(row))


@operation(
    "Change an offer's details or status",
    roles=ROLES,
    tags=TAGS,
    body=OfferUpdateSchema,
    responses={200: OfferSchema},
    problems=["validation_error", "not_found", "conflict"],
)
async def update_offer(request: web.Request) -> web.Response:
    """Status follows draft → active ⇄ paused → ended. Once redeemed, pricing is frozen,
    limits may only be loosened and the window only extended (409 conflict otherwise)."""
    offer_id = _offer_id(request)
    changes = await read_json(request, _update)
    caller = principal(request)
    async with request.app[POOL].acquire() as conn:
        row = await offers_db.update_offer(
            conn,
            offer_id,
            changes,
            caller,
            only_partner_id=_own_only(caller),
        )
    if row is None:
        raise ApiError("not_found", "No such offer")
    return json_response(_out.dump(row))
