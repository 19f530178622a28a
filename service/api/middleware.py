"""Cross-cutting work for every request: request id, access log, problem rendering,
authentication. Handlers never do any of this themselves."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

import asyncpg
from aiohttp import web

from service import metrics
from service.api.http import PRINCIPAL_KEY, Handler, dumps
from service.api.staff_session import staff_session_caller
from service.app_keys import POOL, SETTINGS
from service.db import keys as keys_db
from service.domain.auth import Principal, Role
from service.domain.errors import ApiError
from service.domain.keys import looks_like_key
from service.flows.sign_in import holder_principal
from service.logs import request_id_var

log = logging.getLogger("youdai.access")
error_log = logging.getLogger("youdai.error")

REQUEST_ID_HEADER = "X-Request-ID"
#: Any printable ASCII a client's tracing uses (spaces, slashes, UUIDs, W3C trace ids),
#: echoed as given; control characters, other text and very long values are replaced,
#: since the id lands in every log line and in problem details.
_VALID_REQUEST_ID = re.compile(r"^[\x20-\x7e]{1,200}$")

_STATUS_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

#: Errors that mean PostgreSQL is unreachable rather than that the request is wrong.
DATABASE_DOWN = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or is gone
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def problem_response(error: ApiError, request_id: str | None = None) -> web.Response:
    response = web.Response(
        text=dumps(error.problem()),
        status=error.status,
        content_type="application/problem+json",
        headers=error.headers,
    )
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    code = _STATUS_CODES.get(exc.status, "bad_request" if exc.status < 500 else "internal_error")
    detail = exc.reason if exc.status != 413 else "The request body is larger than 1 MiB"
    error = ApiError(code, detail)
    if exc.status == 405 and "Allow" in exc.headers:
        error.headers["Allow"] = exc.headers["Allow"]
    return error


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, problem rendering and the access log, in that order of nesting."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        try:
            if "\x00" in request.path:
                # No id or path holds U+0000 (PostgreSQL text cannot store it).
                raise ApiError("not_found", "No such resource")
            response = await handler(request)
        except ApiError as error:
            response = problem_response(error)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = problem_response(_from_http_exception(exc))
        except DATABASE_DOWN:
            error_log.warning("database unavailable", exc_info=True)
            response = problem_response(
                ApiError(
                    "database_unavailable",
                    "The database is not answering; try again shortly",
                    headers={"Retry-After": "2"},
                )
            )
        except asyncio.CancelledError:
            status = 499  # the client went away; nothing is sent
            raise
        except Exception:
            error_log.exception("unexpected error")
            response = problem_response(
                ApiError("internal_error", f"Something went wrong; quote request id {request_id}")
            )
        response.headers[REQUEST_ID_HEADER] = request_id
        status = response.status
        return response
    finally:
        elapsed = time.perf_counter() - started
        route = request.match_info.route.resource
        template = route.canonical if route is not None else None
        log.info(
            "request",
            extra={
                "method": request.method,
                "route": template,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        metrics.observe_request(request.method, template, status, elapsed)
        request_id_var.reset(token)


def bearer_secret(request: web.Request) -> str | None:
    """The key or session token of `Authorization: Bearer <secret>`; None without the header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ApiError("unauthenticated", "Use Authorization: Bearer <key>")
    return secret


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn `Authorization: Bearer <key>` into request["principal"].

    No header: anonymous (the handler's `operation(roles=...)` decides). A header that
    does not name a live key or holder session: 401 at once, so a revoked key fails on
    its next request.
    """
    secret = bearer_secret(request)
    if secret is None:
        # No Authorization header: a staff session cookie may name the caller (SPEC 7).
        staff = await staff_session_caller(request)
        if staff is not None:
            request[PRINCIPAL_KEY] = staff
        return await handler(request)
    if looks_like_key(secret):
        async with request.app[POOL].acquire() as conn:
            row = await keys_db.authenticate(conn, secret)
        if row is None:
            raise ApiError("unauthenticated", "The key is unknown or revoked")
        request[PRINCIPAL_KEY] = Principal(
            role=Role(row["role"]),
            key_id=row["id"],
            partner_id=row["partner_id"],
            label=row["label"],
        )
    else:
        caller = await holder_principal(request.app[POOL], secret, request.app[SETTINGS].timezone)
        if caller is None:
            raise ApiError("unauthenticated", "The session is unknown or has expired")
        request[PRINCIPAL_KEY] = caller
    return await handler(request)
