"""Applications to join as a partner (docs/api.md): anyone applies, with no key; the bureau
lists, reads and decides them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from schemas.applications import (
    ApplicationApprovedSchema,
    ApplicationCreateSchema,
    ApplicationListQuerySchema,
    ApplicationPageSchema,
    ApplicationRejectionSchema,
    ApplicationSchema,
    ApplicationSubmittedSchema,
)
from schemas.partners import PartnerSchema
from service.api.http import (
    client_address,
    json_response,
    operation,
    page_request,
    page_response,
    principal,
    read_json,
    read_query,
)
from service.api.staff import people_origin, setup_url
from service.app_keys import CLOCK, POOL, SETTINGS
from service.domain.auth import Role
from service.flows import applications as applications_flow
from service.flows.applications import Submitted

TAGS = ["partner applications"]
NO_STORE = {"Cache-Control": "no-store"}
#: The applicant's status page; the link's `token` is its secret.
STATUS_PATH = "/join/status"

_create = ApplicationCreateSchema()
_submitted = ApplicationSubmittedSchema()
_query = ApplicationListQuerySchema()
_out = ApplicationSchema()
_rejection = ApplicationRejectionSchema()
_approved = ApplicationApprovedSchema()
_partner = PartnerSchema()


def status_url(request: web.Request, token: str) -> str:
    """The applicant's secret link, on YOUDAI_PUBLIC_URL (never the Host header)."""
    return f"{people_origin(request)}{STATUS_PATH}?{urlencode({'token': token})}"


async def submit(request: web.Request, fields: dict[str, Any]) -> Submitted:
    """One submission, from the API or the /join form: same rules, same refusals."""
    return await applications_flow.submit(
        request.app[POOL],
        fields,
        address=client_address(request),
        now=request.app[CLOCK](),
        regions=request.app[SETTINGS].regions,
    )


@operation(
    "Apply to join as a partner (anyone, no key)",
    tags=TAGS,
    body=ApplicationCreateSchema,
    responses={201: ApplicationSubmittedSchema},
    problems=["conflict", "too_many_attempts"],
)
async def create_application(request: web.Request) -> web.Response:
    """At most 5 applications from one client address an hour, then 429 with Retry-After.
    A name (compared without spaces or case) or contact phone (its digits) that a partner
    or an open application has already answers 409 conflict. `status_url` is a secret
    link to the application's status, in this answer only."""
    fields = await read_json(request, _create)
    submitted = await submit(request, fields)
    body = {
        **asdict(submitted.application),
        "status_url": status_url(request, submitted.status_token),
    }
    return json_response(_submitted.dump(body), status=201, headers=NO_STORE)


@operation(
    "List applications to join, newest first",
    roles=[Role.ADMIN],
    tags=TAGS,
    query=ApplicationListQuerySchema,
    responses={200: ApplicationPageSchema},
)
async def list_applications(request: web.Request) -> web.Response:
    query = read_query(request, _query)
    page = await applications_flow.list_page(
        request.app[POOL], page_request(query), status=query.get("status")
    )
    return page_response(page, lambda application: _out.dump(asdict(application)))


@operation(
    "Get an application to join",
    roles=[Role.ADMIN],
    tags=TAGS,
    responses={200: ApplicationSchema},
    problems=["not_found"],
)
async def get_application(request: web.Request) -> web.Response:
    application = await applications_flow.get(
        request.app[POOL], request.match_info["application_id"]
    )
    return json_response(_out.dump(asdict(application)))


@operation(
    "Approve an application: the partner is enrolled, active, and its manager invited",
    roles=[Role.ADMIN],
    tags=TAGS,
    responses={201: ApplicationApprovedSchema},
    problems=["not_found", "conflict"],
)
async def approve_application(request: web.Request) -> web.Response:
    """The partner takes the application's name, category, contacts, address and public
    profile, and is active at once; a partner_manager account is invited at the contact
    email (`manager.setup_url` is in this answer only and works once, for 72 hours). An
    application decided already, or a contact email a staff account has, is 409."""
    approval = await applications_flow.approve(
        request.app[POOL],
        principal(request),
        request.match_info["application_id"],
        request.app[CLOCK](),
    )
    body = {
        "partner": approval.partner,
        "manager": {
            "email": approval.invitation.account.email,
            "setup_url": setup_url(people_origin(request), approval.invitation.setup_token),
        },
    }
    return json_response(_approved.dump(body), status=201, headers=NO_STORE)


@operation(
    "Reject an application, with the reason its applicant reads",
    roles=[Role.ADMIN],
    tags=TAGS,
    body=ApplicationRejectionSchema,
    responses={200: ApplicationSchema},
    problems=["not_found", "conflict"],
)
async def reject_application(request: web.Request) -> web.Response:
    """An application decided already is 409 conflict."""
    fields = await read_json(request, _rejection)
    application = await applications_flow.reject(
        request.app[POOL],
        principal(request),
        request.match_info["application_id"],
        fields["reason"],
        request.app[CLOCK](),
    )
    return json_response(_out.dump(asdict(application)))
