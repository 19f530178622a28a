"""Offers: a partner key manages its own partner's offers; an admin key any partner's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    page_response,
    principal,
    read_json,
    read_query,
)
from service.app_keys import POOL, SETTINGS
from service.domain.auth import Role
from service.flows import offers as offers_flow

if TYPE_CHECKING:
    from service.domain.offers import Offer

_create = OfferCreateSchema()
_update = OfferUpdateSchema()
_query = OfferListQuerySchema()
_out = OfferSchema()

TAGS = ["offers"]


def _shown(request: web.Request, offer: Offer) -> dict[str, Any]:
    return _out.dump(offers_flow.as_shown(offer, request.app[SETTINGS].timezone))


ROLES = [Role.ADMIN, Role.PARTNER]


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
    offer = await offers_flow.create(request.app[POOL], principal(request), fields)
    return json_response(_shown(request, offer), status=201)


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
    offers = await offers_flow.list_page(
        request.app[POOL],
        principal(request),
        page,
        status=query.get("status"),
        partner_id=query.get("partner_id"),
        title_contains=query.get("q"),
        open_to_category=query.get("category"),
    )
    return page_response(offers, lambda offer: _shown(request, offer))


@operation(
    "Get an offer",
    roles=ROLES,
    tags=TAGS,
    responses={200: OfferSchema},
    problems=["not_found"],
)
async def get_offer(request: web.Request) -> web.Response:
    offer = await offers_flow.get(
        request.app[POOL], principal(request), request.match_info["offer_id"]
    )
    return json_response(_shown(request, offer))


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
    changes = await read_json(request, _update)
    offer = await offers_flow.change(
        request.app[POOL], principal(request), request.match_info["offer_id"], changes
    )
    return json_response(_shown(request, offer))
