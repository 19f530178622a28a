"""Vouchers issued by bureau staff at a service desk."""

from __future__ import annotations

from aiohttp import web

from schemas.vouchers import VoucherIssueSchema, VoucherSchema
from service.api.http import json_response, operation, principal, read_json
from service.api.me import CLAIM_PROBLEMS, voucher_view
from service.app_keys import CLOCK, POOL, SETTINGS
from service.domain.auth import Role
from service.flows import vouchers as vouchers_flow

_issue_in = VoucherIssueSchema()


@operation(
    "Issue a voucher to a holder at a service desk (again: the same voucher)",
    roles=[Role.ADMIN],
    tags=["vouchers"],
    body=VoucherIssueSchema,
    responses={201: VoucherSchema, 200: VoucherSchema},
    problems=CLAIM_PROBLEMS,
)
async def issue_voucher(request: web.Request) -> web.Response:
    fields = await read_json(request, _issue_in)
    voucher, created = await vouchers_flow.issue_at_desk(
        request.app[POOL],
        request.app[SETTINGS],
        principal(request),
        fields["holder_id"],
        fields["offer_id"],
        clock=request.app[CLOCK],
    )
    return json_response(
        voucher_view(request, voucher, request.app[CLOCK]()), status=201 if created else 200
    )
