"""Staff accounts (docs/staff.md): sign-in with a cookie session, the own profile and second
factor, and the bureau_admin's management of accounts. Thin handlers: parse, call one
flow, dump."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from schemas.staff import (
    StaffInvitedSchema,
    StaffInviteSchema,
    StaffListQuerySchema,
    StaffMeSchema,
    StaffPageSchema,
    StaffSchema,
    StaffSessionSchema,
    StaffSetupSchema,
    StaffSignInSchema,
    StaffUpdateSchema,
    TotpConfirmSchema,
    TotpEnrolmentSchema,
)
from service import qr
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
from service.api.staff_session import (
    SESSION_SECRET_KEY,
    clear_session_cookie,
    set_session_cookie,
)
from service.app_keys import CLOCK, POOL, QR_POOL, SEALER, SETTINGS
from service.domain import staff as rules
from service.domain.auth import STAFF_ROLES, StaffPrincipal, StaffRole
from service.domain.links import link_origin
from service.flows import staff as staff_flow

if TYPE_CHECKING:
    from service.domain.staff import StaffAccount

TAGS = ["staff"]
NO_STORE = {"Cache-Control": "no-store"}
#: Where the console's setup page reads the link's `token` query parameter.
SETUP_PATH = "/console/setup"

_invite = StaffInviteSchema()
_invited = StaffInvitedSchema()
_list_query = StaffListQuerySchema()
_staff = StaffSchema()
_update = StaffUpdateSchema()
_setup = StaffSetupSchema()
_sign_in = StaffSignInSchema()
_session = StaffSessionSchema()
_me = StaffMeSchema()
_enrolment = TotpEnrolmentSchema()
_confirm = TotpConfirmSchema()


def setup_url(origin: str, token: str) -> str:
    return f"{origin}{SETUP_PATH}?token={token}"


def people_origin(request: web.Request) -> str:
    """The origin of links written for people: YOUDAI_PUBLIC_URL, never the Host header
    (service.domain.links)."""
    settings = request.app[SETTINGS]
    return link_origin(settings.public_url, request.scheme, request.host, settings.own_address())


def _staff_caller(request: web.Request) -> StaffPrincipal:
    caller = principal(request)
    assert isinstance(caller, StaffPrincipal)  # the routes below admit staff roles only
    return caller


@operation(
    "Sign in with email and password (and the TOTP code once enrolled)",
    tags=TAGS,
    body=StaffSignInSchema,
    responses={201: StaffSessionSchema},
    problems=["unauthenticated", "totp_required", "too_many_attempts"],
)
async def sign_in(request: web.Request) -> web.Response:
    """Answers the session's CSRF token and sets the `youdai_staff` cookie (HttpOnly,
    SameSite=Strict, Path=/, Secure unless reached over plain http on loopback)."""
    fields = await read_json(request, _sign_in)
    signed_in = await staff_flow.sign_in(
        request.app[POOL],
        request.app[SEALER],
        email=fields["email"],
        password=fields["password"],
        totp_code=fields.get("totp_code"),
        address=client_address(request),
        address_limit=request.app[SETTINGS].signin_address_limit,
        clock=request.app[CLOCK],
    )
    response = json_response(
        _session.dump(
            {
                "staff": asdict(signed_in.account),
                "csrf_token": signed_in.csrf_token,
                "expires_at": signed_in.expires_at,
            }
        ),
        status=201,
        headers=NO_STORE,
    )
    set_session_cookie(request, response, signed_in.session_secret)
    return response


@operation(
    "Sign out: end this session",
    roles=STAFF_ROLES,
    tags=TAGS,
    responses={204: None},
    before_second_factor=True,
)
async def sign_out(request: web.Request) -> web.Response:
    await staff_flow.sign_out(request.app[POOL], _staff_caller(request))
    response = web.Response(status=204)
    clear_session_cookie(request, response)
    return response


def _me_view(request: web.Request, caller: StaffPrincipal, account: StaffAccount) -> dict:
    policy = rules.TotpPolicy(request.app[SETTINGS].staff_totp)
    return _me.dump(
        {
            **asdict(account),
            "csrf_token": rules.csrf_token_for(request[SESSION_SECRET_KEY]),
            "totp_required": rules.totp_required(policy, StaffRole(account.role)),
            "must_enrol_totp": caller.must_enrol_totp,
        }
    )


@operation(
    "The signed-in person, and this session's CSRF token",
    roles=STAFF_ROLES,
    tags=TAGS,
    responses={200: StaffMeSchema},
    before_second_factor=True,
)
async def get_staff_me(request: web.Request) -> web.Response:
    caller = _staff_caller(request)
    account = await staff_flow.me(request.app[POOL], caller)
    return json_response(_me_view(request, caller, account), headers=NO_STORE)


@operation(
    "Set the password of an invitation (the setup link's token, once)",
    tags=TAGS,
    body=StaffSetupSchema,
    responses={204: None},
    problems=["validation_error", "not_found"],
)
async def set_up_staff(request: web.Request) -> web.Response:
    fields = await read_json(request, _setup)
    await staff_flow.set_up(request.app[POOL], fields["setup_token"], fields["password"])
    return web.Response(status=204)


@operation(
    "Begin enrolling a TOTP second factor: a new secret and its otpauth URI",
    roles=STAFF_ROLES,
    tags=TAGS,
    responses={201: TotpEnrolmentSchema},
    problems=["conflict"],
    before_second_factor=True,
)
async def enrol_totp(request: web.Request) -> web.Response:
    """The secret is shown here (and as a QR at `…/totp/qr.svg`) until it is confirmed."""
    enrolment = await staff_flow.enrol_totp(
        request.app[POOL], request.app[SEALER], _staff_caller(request)
    )
    return json_response(_enrolment.dump(asdict(enrolment)), status=201, headers=NO_STORE)


@operation(
    "The enrolment in progress as a QR code (SVG) for an authenticator app",
    roles=STAFF_ROLES,
    tags=TAGS,
    responses={200: "image/svg+xml"},
    problems=["not_found"],
    before_second_factor=True,
)
async def totp_qr_svg(request: web.Request) -> web.Response:
    uri = await staff_flow.pending_otpauth_uri(
        request.app[POOL], request.app[SEALER], _staff_caller(request)
    )
    image = await request.app[QR_POOL].render(qr.svg, uri)
    return web.Response(body=image, content_type="image/svg+xml", headers=NO_STORE)


@operation(
    "Confirm the second factor with a current code; sign-in needs a code from now on",
    roles=STAFF_ROLES,
    tags=TAGS,
    body=TotpConfirmSchema,
    responses={200: StaffSchema},
    problems=["conflict", "validation_error"],
    before_second_factor=True,
)
async def confirm_totp(request: web.Request) -> web.Response:
    fields = await read_json(request, _confirm)
    account = await staff_flow.confirm_totp(
        request.app[POOL],
        request.app[SEALER],
        _staff_caller(request),
        fields["code"],
        clock=request.app[CLOCK],
    )
    return json_response(_staff.dump(asdict(account)))


@operation(
    "Invite a person: a new account and its one-time setup link",
    roles=[StaffRole.BUREAU_ADMIN],
    tags=TAGS,
    body=StaffInviteSchema,
    responses={201: StaffInvitedSchema},
    problems=["conflict", "not_found"],
)
async def invite_staff(request: web.Request) -> web.Response:
    """`setup_url` is in this answer only and works once, for 72 hours."""
    fields = await read_json(request, _invite)
    invitation = await staff_flow.invite(
        request.app[POOL],
        principal(request),
        email=fields["email"],
        role=StaffRole(fields["role"]),
        display_name=fields["display_name"],
        partner_id=fields["partner_id"],
        clock=request.app[CLOCK],
    )
    body = {
        **asdict(invitation.account),
        "setup_url": setup_url(people_origin(request), invitation.setup_token),
        "setup_expires_at": invitation.expires_at,
    }
    return json_response(_invited.dump(body), status=201, headers=NO_STORE)


@operation(
    "List staff accounts",
    roles=[StaffRole.BUREAU_ADMIN],
    tags=TAGS,
    query=StaffListQuerySchema,
    responses={200: StaffPageSchema},
)
async def list_staff(request: web.Request) -> web.Response:
    query = read_query(request, _list_query)
    page = page_request(query)
    filters: dict[str, Any] = {
        name: query.get(name) for name in ("role", "status", "partner_id", "q")
    }
    accounts = await staff_flow.list_staff(request.app[POOL], page, filters)
    return page_response(accounts, _staff.dump)


@operation(
    "A staff account",
    roles=[StaffRole.BUREAU_ADMIN],
    tags=TAGS,
    responses={200: StaffSchema},
    problems=["not_found"],
)
async def get_staff(request: web.Request) -> web.Response:
    account = await staff_flow.get_staff(request.app[POOL], request.match_info["staff_id"])
    return json_response(_staff.dump(asdict(account)))


@operation(
    "Change a staff account: display name, role, partner, status, or reset its second factor",
    roles=[StaffRole.BUREAU_ADMIN],
    tags=TAGS,
    body=StaffUpdateSchema,
    responses={200: StaffSchema},
    problems=["not_found", "conflict", "validation_error"],
)
async def update_staff(request: web.Request) -> web.Response:
    """Disabling an account, changing its role or partner, or resetting its second factor
    ends all its sessions at once. The last active bureau_admin cannot be disabled or
    demoted (409)."""
    changes = await read_json(request, _update)
    reset = changes.pop("reset_totp", False)
    staff_id = request.match_info["staff_id"]
    account = await staff_flow.update_staff(
        request.app[POOL], principal(request), staff_id, changes, reset_totp=reset
    )
    return json_response(_staff.dump(asdict(account)))
