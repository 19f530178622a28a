"""Cross-cutting work for every request: request id, access log, problem rendering,
authentication. Handlers never do any of this themselves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import traceback
import uuid

from aiohttp import web

from service import metrics
from service.api.http import PRINCIPAL_KEY, Handler, dumps, operation_of, problem_language
from service.api.problems import problem_body
from service.api.staff_session import staff_session_caller
from service.app_keys import CLOCK, KEY_CACHE, POOL, SETTINGS
from service.domain.errors import ApiError, validation_error
from service.domain.keys import looks_like_key
from service.domain.language import ENGLISH, Said
from service.flows import keys as keys_flow
from service.flows.health import DATABASE_DOWN
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


def problem_response(
    error: ApiError,
    request_id: str | None = None,
    language: str = ENGLISH,
    *,
    status: int | None = None,
) -> web.Response:
    """The problem+json answer of `error`, its status the code's (api/problems.py) unless
    `status` is given (what aiohttp's parser refused with)."""
    body = problem_body(error, language, status=status)
    # backslashreplace: a detail quoting bad input (a lone surrogate) still encodes.
    response = web.Response(
        body=dumps(body).encode("utf-8", "backslashreplace"),
        status=body["status"],
        content_type="application/problem+json",
        headers=error.headers,
    )
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    response.headers.add("Vary", "Accept-Language")
    return response


#: What the client gets when even rendering a problem fails: fixed bytes, nothing to go wrong.
_LAST_RESORT = (
    b'{"type":"about:blank","title":"Internal Server Error","status":500,'
    b'"detail":"Something went wrong","code":"internal_error"}'
)


def last_resort_response(request_id: str) -> web.Response:
    response = web.Response(body=_LAST_RESORT, status=500, content_type="application/problem+json")
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def log_unexpected(message: str, error: BaseException) -> None:
    """Log an exception by its type and where it was raised, never its message or
    locals: those quote request values (a card number, a PIN) — docs/product.md, minimal data."""
    frames = traceback.extract_tb(error.__traceback__)
    error_log.error(
        message,
        extra={
            "exception": type(error).__qualname__,
            "stack": [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames],
        },
    )


#: Header values must be printable ASCII (docs/api.md); tab is allowed inside a value.
_UNPRINTABLE_HEADER = re.compile(rb"[^\x20-\x7e\t]")


def refuse_unprintable_headers(request: web.Request) -> None:
    """Header bytes that are not printable ASCII answer 422 before anything reads them
    (X-Request-ID excepted: an unsafe one is replaced, never refused)."""
    for name, value in request.raw_headers:
        if _UNPRINTABLE_HEADER.search(value) and name.lower() != b"x-request-id":
            header = name.decode("ascii", "backslashreplace")
            raise validation_error(
                header, Said("must be printable ASCII", "必须是可打印的 ASCII 字符")
            )


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    code = _STATUS_CODES.get(exc.status, "bad_request" if exc.status < 500 else "internal_error")
    detail = (
        exc.reason
        if exc.status != 413
        else Said("The request body is larger than 1 MiB", "请求体大于 1 MiB")
    )
    error = ApiError(code, detail)
    if exc.status == 405 and "Allow" in exc.headers:
        error.headers["Allow"] = exc.headers["Allow"]
    return error


def refuse_methods_a_fixed_path_lacks(request: web.Request) -> None:
    """A fixed path owns its path: GET /v1/holders/import is 405 with Allow: POST, not
    the holder "import" of the sibling template /v1/holders/{holder_id} (which aiohttp
    would route it to), and its Allow lists its own methods, not the union with that
    template's."""
    matched = request.match_info.route.resource
    if isinstance(matched, web.PlainResource):
        return  # the fixed route itself, with a method it has
    for resource in request.app.router.resources():
        if isinstance(resource, web.PlainResource) and resource.canonical == request.path:
            allowed = sorted({route.method for route in resource})
            raise ApiError(
                "method_not_allowed",
                Said(
                    f"{request.path} allows {', '.join(allowed)}",
                    f"{request.path} 只允许 {', '.join(allowed)}",
                ),
                headers={"Allow": ",".join(allowed)},
            )


#: The status counted (never sent) for a request whose client went away first (nginx's).
CLIENT_CLOSED_REQUEST = 499


def hung_up(request: web.Request, error: BaseException) -> bool:
    """The client closed its connection and that is what failed: reading its body
    raises ConnectionResetError once the connection is lost. The client's doing, never
    `database_unavailable` (docs/running.md)."""
    return isinstance(error, ConnectionError) and request.transport is None


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, problem rendering and the access log, in that order of nesting."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await _answer(request, handler, request_id)
        response.headers[REQUEST_ID_HEADER] = request_id
        status = response.status
        return response
    except asyncio.CancelledError:
        status = CLIENT_CLOSED_REQUEST  # the client went away; nothing is sent
        raise
    except web.HTTPException:
        raise
    except Exception as error:  # rendering the problem itself failed: the last resort
        with contextlib.suppress(Exception):
            log_unexpected("rendering a problem failed", error)
        status = 500
        return last_resort_response(request_id)
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


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    """The handler's answer, or what it raised as a problem (docs/codes.md)."""
    try:
        if "\x00" in request.path:
            # No id or path holds U+0000 (PostgreSQL text cannot store it).
            raise ApiError("not_found", Said("No such resource", "没有此资源"))
        refuse_unprintable_headers(request)
        refuse_methods_a_fixed_path_lacks(request)
        return await handler(request)
    except ApiError as error:
        return problem_response(error, language=problem_language(request))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(_from_http_exception(exc), language=problem_language(request))
    except DATABASE_DOWN as error:
        error_log.warning("database unavailable", extra={"exception": type(error).__qualname__})
        return problem_response(
            ApiError(
                "database_unavailable",
                Said(
                    "The database is not answering; try again shortly", "数据库没有响应：请稍后再试"
                ),
                headers={"Retry-After": "2"},
            ),
            language=problem_language(request),
        )
    except Exception as error:
        if hung_up(request, error):
            # Not an outage nor a fault of ours: counted as the client's, and the answer
            # is never sent (aiohttp drops it on a closed connection).
            return web.Response(status=CLIENT_CLOSED_REQUEST)
        log_unexpected("unexpected error", error)
        return problem_response(
            ApiError(
                "internal_error",
                Said(
                    f"Something went wrong; quote request id {request_id}",
                    f"出现了问题：请提供请求编号 {request_id}",
                ),
            ),
            language=problem_language(request),
        )


def answer_parser_errors_as_problems() -> None:
    """Requests aiohttp's parser refuses (oversized or malformed headers, bad request
    lines) never reach a middleware: aiohttp answers them itself in plain text. This
    makes that answer a problem+json with an X-Request-ID too (docs/api.md), for every
    server of the process. aiohttp has no hook for it, so its one method is wrapped;
    idempotent."""
    from aiohttp import web_protocol

    handler_class = web_protocol.RequestHandler
    if getattr(handler_class.handle_error, "_youdai", False):
        return
    original = handler_class.handle_error

    def handle_error(
        self: web_protocol.RequestHandler,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: nothing more can be sent
            return original(self, request, status, exc, message)
        # aiohttp would log the exception, which quotes the offending bytes (a header may
        # hold a key): log its type only.
        error_log.info(
            "refused by the HTTP parser",
            extra={"status": status, "exception": type(exc).__qualname__ if exc else None},
        )
        if status >= 500:
            error = ApiError("internal_error", Said("Something went wrong", "出现了问题"))
            answered = None
        else:
            error = ApiError(
                _STATUS_CODES.get(status, "bad_request"),
                "The request line or headers are malformed or too large",
            )
            answered = status
        response = problem_response(error, uuid.uuid4().hex, status=answered)
        response.headers["Server"] = "youdai"
        response.force_close()
        return response

    handle_error._youdai = True  # type: ignore[attr-defined]
    handler_class.handle_error = handle_error  # type: ignore[method-assign]


async def common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer, static files included (on_response_prepare): a Server header
    that names no version, and nosniff so nothing is ever read as another type."""
    response.headers["Server"] = "youdai"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path == "/docs" or request.path.startswith("/docs/"):
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")


def bearer_secret(request: web.Request) -> str | None:
    """The key or session token of `Authorization: Bearer <secret>`; None without the header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(
            "unauthenticated",
            Said("Use Authorization: Bearer <key>", "请使用 Authorization: Bearer <密钥>"),
        )
    return secret


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn `Authorization: Bearer <key>` into request["principal"].

    No header: anonymous (the handler's `operation(roles=...)` decides). A header that
    does not name a live key or holder session: 401 at once. Keys are verified through
    the process's cache (flows/keys.caller_of), which forgets a revoked key as soon as
    PostgreSQL announces the revocation.
    """
    op = operation_of(request.match_info.handler)
    if op is None or not op.roles:
        # A route anyone may call reads neither Authorization (docs/api.md: a stale or
        # garbage header must not break /healthz, the pages or sign-in) nor the staff
        # cookie: the request is not authenticated by it, so its CSRF check does not
        # apply (docs/staff.md: a console session never breaks the wallet's sign-in in the
        # same browser). Another site cannot post to these routes anyway: the cookie
        # is SameSite=Strict and their JSON bodies need a CORS preflight.
        return await handler(request)
    secret = bearer_secret(request)
    if secret is None:
        # No Authorization header: a staff session cookie may name the caller (docs/staff.md),
        # and then an unsafe method needs the session's CSRF token.
        staff = await staff_session_caller(request)
        if staff is not None:
            request[PRINCIPAL_KEY] = staff
        return await handler(request)
    if looks_like_key(secret):
        key_caller = await keys_flow.caller_of(request.app[POOL], request.app[KEY_CACHE], secret)
        if key_caller is None:
            raise ApiError(
                "unauthenticated", Said("The key is unknown or revoked", "密钥未知或已被吊销")
            )
        request[PRINCIPAL_KEY] = key_caller
    else:
        caller = await holder_principal(
            request.app[POOL], secret, request.app[SETTINGS].timezone, clock=request.app[CLOCK]
        )
        if caller is None:
            raise ApiError(
                "unauthenticated", Said("The session is unknown or has expired", "会话未知或已过期")
            )
        request[PRINCIPAL_KEY] = caller
    return await handler(request)
