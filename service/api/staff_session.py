"""The staff session cookie and its CSRF check (docs/staff.md), used by the authenticate
middleware: a request without an Authorization header may be a person's, named by
the `youdai_staff` cookie. A cookie-authenticated request with any method but
GET/HEAD must carry `X-CSRF-Token` equal to the session's token, or it is refused
with 403 csrf_failed before any handler runs (so it changes nothing). API keys and
holder tokens never look at the cookie."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from service.app_keys import POOL, SETTINGS
from service.domain import staff as rules
from service.domain.auth import StaffPrincipal
from service.domain.errors import ApiError
from service.domain.language import Said
from service.flows import staff as staff_flow

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: The session secret of this request's cookie, kept for sign-out and CSRF.
SESSION_SECRET_KEY = web.RequestKey("staff_session_secret", str)


async def staff_session_caller(request: web.Request) -> StaffPrincipal | None:
    secret = request.cookies.get(rules.COOKIE_NAME)
    if not secret:
        return None
    caller = await staff_flow.session_principal(
        request.app[POOL], secret, rules.TotpPolicy(request.app[SETTINGS].staff_totp)
    )
    if caller is None:
        return None  # a stale cookie: the caller is anonymous (signing in again works)
    if request.method not in SAFE_METHODS and not rules.csrf_matches(
        secret, request.headers.get(rules.CSRF_HEADER)
    ):
        raise ApiError(
            "csrf_failed",
            Said(
                f"Send the session's {rules.CSRF_HEADER} header",
                f"请发送会话的 {rules.CSRF_HEADER} 请求头",
            ),
        )
    request[SESSION_SECRET_KEY] = secret
    return caller


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def cookie_must_be_secure(request: web.Request) -> bool:
    """Secure unless the service is reached over plain http on loopback (a developer's
    own machine). A TLS proxy in front forwards `X-Forwarded-Proto: https`, and a
    request from any other address is assumed to have come over TLS: marking a cookie
    Secure never weakens it."""
    if request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https":
        return True
    return not _is_loopback(request.remote)


def set_session_cookie(request: web.Request, response: web.StreamResponse, secret: str) -> None:
    response.set_cookie(
        rules.COOKIE_NAME,
        secret,
        max_age=int(rules.SESSION_MAX_AGE.total_seconds()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=cookie_must_be_secure(request),
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(
        rules.COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=cookie_must_be_secure(request),
    )
