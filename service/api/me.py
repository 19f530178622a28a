"""The holder's side: sign in, see offers open to them, claim vouchers, show tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from schemas.common import PageQuerySchema
from schemas.vouchers import (
    HolderSessionCreateSchema,
    HolderSessionSchema,
    MeSchema,
    OfferForHolderPageSchema,
    OfferForHolderSchema,
    VoucherClaimSchema,
    VoucherListQuerySchema,
    VoucherPageSchema,
    VoucherSchema,
    VoucherTokenSchema,
)
from service import barcodes, qr
from service.api.http import (
    caller_as,
    client_address,
    json_response,
    operation,
    page_request,
    page_response,
    read_json,
    read_query,
)
from service.api.middleware import bearer_secret
from service.app_keys import CLOCK, KEYRING, POOL, QR_POOL, SETTINGS
from service.domain.auth import HolderSession, Role
from service.flows import holders as holders_flow
from service.flows import sign_in as sign_in_flow
from service.flows import vouchers as vouchers_flow

if TYPE_CHECKING:
    from service.domain.vouchers import HeldVoucher

TAGS = ["holders (self-service)"]
#: Why a voucher cannot be claimed (by the holder or at a service desk).
CLAIM_PROBLEMS = [
    "not_found",
    "holder_inactive",
    "holder_ineligible",
    "offer_inactive",
    "partner_inactive",
    "conflict",
]
NO_STORE = {"Cache-Control": "no-store"}

_session_in = HolderSessionCreateSchema()
_session_out = HolderSessionSchema()
_me_out = MeSchema()
_offer_out = OfferForHolderSchema()
_claim_in = VoucherClaimSchema()
_voucher_out = VoucherSchema()
_voucher_query = VoucherListQuerySchema()
_page_query = PageQuerySchema()
_token_out = VoucherTokenSchema()


def voucher_view(request: web.Request, row: HeldVoucher, now: datetime) -> dict[str, Any]:
    """A voucher as its holder sees it `now` (the status accounts for expiry)."""
    return _voucher_out.dump(vouchers_flow.as_shown(row, now, request.app[SETTINGS].timezone))


@operation(
    "Sign in with card number and PIN",
    tags=TAGS,
    body=HolderSessionCreateSchema,
    responses={201: HolderSessionSchema},
    problems=["unauthenticated", "holder_inactive", "too_many_attempts"],
)
async def create_session(request: web.Request) -> web.Response:
    """Five wrong PINs within 15 minutes lock the card for 15 minutes, whoever asks;
    20 failed sign-ins from one client address in 15 minutes refuse that address.
    An unknown card and a wrong PIN get the same answer."""
    fields = await read_json(request, _session_in)
    settings = request.app[SETTINGS]
    token, expires_at = await sign_in_flow.sign_in(
        request.app[POOL],
        fields["card_number"],
        fields["pin"],
        settings.timezone,
        address=client_address(request),
        address_limit=settings.signin_address_limit,
        clock=request.app[CLOCK],
    )
    return json_response(
        _session_out.dump({"token": token, "expires_at": expires_at}), status=201, headers=NO_STORE
    )


@operation(
    "Sign out: end this session",
    roles=[Role.HOLDER],
    tags=TAGS,
    responses={204: "The session has ended; its token is refused from now on"},
)
async def end_session(request: web.Request) -> web.Response:
    """Ends only the session whose token is sent; the holder's other sessions go on."""
    secret = bearer_secret(request)
    assert secret is not None  # the route admits holder sessions only: it was sent
    await sign_in_flow.sign_out(
        request.app[POOL], secret, caller_as(request, HolderSession).holder_id
    )
    return web.Response(status=204, headers=NO_STORE)


@operation("The signed-in holder", roles=[Role.HOLDER], tags=TAGS, responses={200: MeSchema})
async def get_me(request: web.Request) -> web.Response:
    holder = await holders_flow.get(request.app[POOL], caller_as(request, HolderSession).holder_id)
    return json_response(_me_out.dump(holder), headers=NO_STORE)


@operation(
    "Offers the signed-in holder could use now",
    roles=[Role.HOLDER],
    tags=TAGS,
    query=PageQuerySchema,
    responses={200: OfferForHolderPageSchema},
)
async def list_my_offers(request: web.Request) -> web.Response:
    """Active offers inside their window, of active partners, open to the holder's category."""
    page = page_request(read_query(request, _page_query))
    offers = await vouchers_flow.offers_for(
        request.app[POOL], caller_as(request, HolderSession), page
    )
    tz = request.app[SETTINGS].timezone
    return page_response(
        offers, lambda offer: _offer_out.dump(vouchers_flow.offer_as_shown(offer, tz))
    )


@operation(
    "Claim a voucher for an offer (again: the same voucher)",
    roles=[Role.HOLDER],
    tags=TAGS,
    body=VoucherClaimSchema,
    responses={201: VoucherSchema, 200: VoucherSchema},
    problems=CLAIM_PROBLEMS,
)
async def claim_voucher(request: web.Request) -> web.Response:
    """A holder has at most one active voucher per offer: claiming again answers 200 with it."""
    fields = await read_json(request, _claim_in)
    holder_id = caller_as(request, HolderSession).holder_id
    voucher, created = await vouchers_flow.claim(
        request.app[POOL],
        request.app[SETTINGS],
        holder_id,
        fields["offer_id"],
        issued_by=holder_id,
        clock=request.app[CLOCK],
    )
    return json_response(
        voucher_view(request, voucher, request.app[CLOCK]()), status=201 if created else 200
    )


@operation(
    "The signed-in holder's vouchers",
    roles=[Role.HOLDER],
    tags=TAGS,
    query=VoucherListQuerySchema,
    responses={200: VoucherPageSchema},
)
async def list_my_vouchers(request: web.Request) -> web.Response:
    query = read_query(request, _voucher_query)
    page = page_request(query)
    vouchers = await vouchers_flow.holders_vouchers(
        request.app[POOL], caller_as(request, HolderSession), page, query.get("status")
    )
    now = request.app[CLOCK]()
    return page_response(vouchers, lambda row: voucher_view(request, row, now))


@operation(
    "One of the signed-in holder's vouchers",
    roles=[Role.HOLDER],
    tags=TAGS,
    responses={200: VoucherSchema},
    problems=["not_found"],
)
async def get_my_voucher(request: web.Request) -> web.Response:
    voucher = await vouchers_flow.own_voucher(
        request.app[POOL], caller_as(request, HolderSession), request.match_info["voucher_id"]
    )
    return json_response(voucher_view(request, voucher, request.app[CLOCK]()))


async def fresh_token(request: web.Request) -> vouchers_flow.Minted:
    """A token for the voucher in the path, if it is the caller's."""
    return await vouchers_flow.own_token(
        request.app[POOL],
        request.app[KEYRING],
        request.app[SETTINGS],
        caller_as(request, HolderSession),
        request.match_info["voucher_id"],
        clock=request.app[CLOCK],
    )


#: A voucher that cannot be used now gets no token (docs/api.md): the rule it breaks, in
#: the till's order.
TOKEN_PROBLEMS = [
    "not_found",
    "partner_inactive",
    "voucher_revoked",
    "voucher_expired",
    "voucher_used_up",
    "holder_inactive",
    "holder_ineligible",
    "offer_inactive",
]


@operation(
    "A freshly minted token for a voucher (what its QR code carries)",
    roles=[Role.HOLDER],
    tags=TAGS,
    responses={200: VoucherTokenSchema},
    problems=TOKEN_PROBLEMS,
)
async def voucher_token(request: web.Request) -> web.Response:
    """Short-lived (YOUDAI_TOKEN_TTL) and minted anew on every call, so a screenshot goes
    stale. Never cached."""
    minted = await fresh_token(request)
    return json_response(
        _token_out.dump(
            {"token": minted.token, "code": minted.code, "expires_at": minted.expires_at}
        ),
        headers=NO_STORE,
    )


def _qr_responses(media_type: str, description: str) -> dict[int, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "headers": {
                "Cache-Control": {"schema": {"type": "string", "enum": ["no-store"]}},
                "X-Token-Expires-At": {
                    "description": "When the token in the image expires (RFC 3339): "
                    "fetch a new image before then.",
                    "schema": {"type": "string", "format": "date-time"},
                },
            },
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    }


async def _voucher_qr(
    request: web.Request, draw: Callable[[str], bytes], content_type: str
) -> web.Response:
    minted = await fresh_token(request)
    image = await request.app[QR_POOL].render(draw, minted.token)
    return web.Response(
        body=image,
        content_type=content_type,
        headers={
            **NO_STORE,
            "X-Token-Expires-At": minted.expires_at.isoformat(),
            "X-Voucher-Code": minted.code,
        },
    )


@operation(
    "A fresh token for a voucher as a QR code (PNG)",
    roles=[Role.HOLDER],
    tags=TAGS,
    responses=_qr_responses("image/png", "A black-and-white PNG, 8 px per module"),
    problems=TOKEN_PROBLEMS,
)
async def voucher_qr_png(request: web.Request) -> web.Response:
    """The same freshly minted token as `…/token`, drawn as a QR code to show at the till.
    Never cached; X-Token-Expires-At says when to fetch a new one."""
    return await _voucher_qr(request, qr.png, "image/png")


@operation(
    "A fresh token for a voucher as a QR code (SVG)",
    roles=[Role.HOLDER],
    tags=TAGS,
    responses=_qr_responses("image/svg+xml", "An SVG of the QR code, dark on white"),
    problems=TOKEN_PROBLEMS,
)
async def voucher_qr_svg(request: web.Request) -> web.Response:
    """The same freshly minted token as `…/token`, drawn as a QR code to show at the till.
    Never cached; X-Token-Expires-At says when to fetch a new one."""
    return await _voucher_qr(request, qr.svg, "image/svg+xml")


@operation(
    "A fresh voucher code as a Code 128 barcode (SVG), for tills that read only 1D codes",
    roles=[Role.HOLDER],
    tags=TAGS,
    responses=_qr_responses("image/svg+xml", "An SVG of the Code 128 barcode, dark on white"),
    problems=TOKEN_PROBLEMS,
)
async def voucher_barcode_svg(request: web.Request) -> web.Response:
    """Mints a token like `…/token` and draws its 18-digit voucher code (docs/product.md), which
    replaces the voucher's earlier code. With `?code=` (the code a QR image came with, in
    its X-Voucher-Code header) it draws that code, while it is the voucher's live one,
    without minting: the QR and the barcode on screen then stand for the same minting.
    Never cached; X-Token-Expires-At says until when."""
    given = request.query.get("code")
    if given is None:
        minted = await fresh_token(request)
        code, expires_at = minted.code, minted.expires_at
    else:
        expires_at = await vouchers_flow.own_code_expiry(
            request.app[POOL],
            request.app[SETTINGS],
            caller_as(request, HolderSession),
            request.match_info["voucher_id"],
            given,
            clock=request.app[CLOCK],
        )
        code = given
    image = await request.app[QR_POOL].render(barcodes.code128_svg, code)
    return web.Response(
        body=image,
        content_type="image/svg+xml",
        headers={**NO_STORE, "X-Token-Expires-At": expires_at.isoformat()},
    )
