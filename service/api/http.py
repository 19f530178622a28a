"""What every handler uses: reading input through schemas, answering JSON, declaring
who may call it and how it is documented.

Handlers stay thin: they parse with a schema, call the domain or the SQL module of
their aggregate, and serialise with a schema. Errors are raised as ApiError and
rendered by the middleware.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from marshmallow import Schema, ValidationError

from schemas.common import messages_to_field_errors
from service.db.pagination import PageRequest, decode_cursor
from service.domain.auth import AnyRole, Principal, StaffPrincipal
from service.domain.errors import ApiError, FieldError
from service.domain.periods import parse_bound

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PRINCIPAL_KEY = web.RequestKey("principal", Principal)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=_default, separators=(",", ":"))


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=dumps(data), status=status, content_type="application/json", headers=headers
    )


def _schema_errors(error: ValidationError) -> ApiError:
    errors = [FieldError(name, message) for name, message in messages_to_field_errors(error)]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return ApiError("validation_error", detail, errors=errors)


async def read_json(request: web.Request, schema: Schema) -> dict[str, Any]:
    """The request body parsed as JSON and loaded through `schema`, or validation_error."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        # SPEC 4.1 files an oversized body with the other bad input: validation_error.
        raise ApiError(
            "validation_error",
            "The body is larger than 1 MiB",
            errors=[FieldError("body", "The body is larger than 1 MiB")],
        ) from None
    if not raw:
        raise ApiError(
            "validation_error",
            "A JSON body is required",
            errors=[FieldError("body", "A JSON body is required")],
        )
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            "validation_error",
            "The body is not valid JSON",
            errors=[FieldError("body", "The body is not valid JSON")],
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            "validation_error",
            "The body must be a JSON object",
            errors=[FieldError("body", "The body must be a JSON object")],
        )
    return load(schema, data)


def read_time_bounds(query: dict[str, Any], tz: ZoneInfo) -> dict[str, datetime | None]:
    """The instants of a TimeBoundedPageQuerySchema's `from` (inclusive) and `to`
    (exclusive; a date includes its whole local day), or validation_error."""
    bounds: dict[str, datetime | None] = {}
    for name, loaded_as, end in (("from", "from_", False), ("to", "to", True)):
        value = query.get(loaded_as)
        try:
            bounds[name] = None if value is None else parse_bound(value, tz, end=end)
        except ValueError as error:
            raise ApiError(
                "validation_error", f"{name}: {error}", errors=[FieldError(name, str(error))]
            ) from None
    return bounds


def load(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        loaded = schema.load(data)
    except ValidationError as error:
        raise _schema_errors(error) from None
    _refuse_nul(loaded, "")
    return loaded


def _refuse_nul(value: Any, field: str) -> None:
    """PostgreSQL text cannot hold U+0000: refuse it here as bad input, not later as a 500."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(
                "validation_error",
                f"{field or 'body'}: must not contain the NUL character",
                errors=[FieldError(field or "body", "must not contain the NUL character")],
            )
    elif isinstance(value, dict):
        for key, inner in value.items():
            _refuse_nul(inner, f"{field}.{key}" if field else str(key).rstrip("_"))
    elif isinstance(value, (list, tuple)):
        for inner in value:
            _refuse_nul(inner, field)


def read_query(request: web.Request, schema: Schema) -> dict[str, Any]:
    """Query parameters loaded through `schema`; a repeated parameter is refused."""
    data: dict[str, Any] = {}
    for name in request.query:
        values = request.query.getall(name)
        if len(values) > 1:
            raise ApiError(
                "validation_error",
                f"{name}: given more than once",
                errors=[FieldError(name, "given more than once")],
            )
        data[name] = values[0]
    return load(schema, data)


def page_request(query: dict[str, Any]) -> PageRequest:
    """The page a list query asks for (`limit`, `cursor` loaded by PageQuerySchema)."""
    cursor = query.get("cursor")
    return PageRequest(limit=query["limit"], after_id=decode_cursor(cursor) if cursor else None)


def principal(request: web.Request) -> Principal:
    """The authenticated caller; `allow` guarantees one is present."""
    return request[PRINCIPAL_KEY]


@dataclass
class Operation:
    """OpenAPI facts about one handler, read by service.api.docs."""

    summary: str
    tags: tuple[str, ...] = ()
    roles: tuple[AnyRole, ...] = ()  # empty: anyone, no key needed
    personal_data: bool = False  # holders' personal data: never for a bureau_auditor
    before_second_factor: bool = False  # open to staff who must still enrol TOTP
    body: Schema | type[Schema] | None = None
    body_content_type: str = "application/json"
    query: type[Schema] | None = None
    responses: dict[int, Schema | type[Schema] | str | None] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    headers: tuple[tuple[str, bool, str], ...] = ()  # (name, required, description)


OPERATION_ATTR = "__youdai_operation__"


def operation(
    summary: str,
    *,
    roles: Iterable[AnyRole] = (),
    tags: Iterable[str] = (),
    body: Schema | type[Schema] | None = None,
    body_content_type: str = "application/json",
    query: type[Schema] | None = None,
    responses: dict[int, Any] | None = None,
    problems: Iterable[str] = (),
    headers: Iterable[tuple[str, bool, str]] = (),
    personal_data: bool = False,
    before_second_factor: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare who may call a handler and how it is documented.

    With `roles`, a caller without a key gets 401 `unauthenticated` and a caller of
    another role 403 `forbidden` before the handler runs. Ownership of the resource
    itself (a partner's own offer) is checked by the handler, since only it knows
    which partner the resource belongs to.
    """
    allowed = tuple(roles)
    tag_names = tuple(tags)
    # Holders' records are personal data wherever they are served (SPEC 2, 4).
    personal_data = personal_data or "holders" in tag_names

    def decorate(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if allowed:
                caller = request.get(PRINCIPAL_KEY)
                if caller is None:
                    raise ApiError("unauthenticated", "Send Authorization: Bearer <key>")
                if not caller.may_call(
                    allowed,
                    read_only=request.method in ("GET", "HEAD"),
                    personal_data=personal_data,
                ):
                    raise ApiError("forbidden", "This key's role may not call this endpoint")
                if (
                    isinstance(caller, StaffPrincipal)
                    and caller.must_enrol_totp
                    and not before_second_factor
                ):
                    raise ApiError(
                        "forbidden",
                        "Enrol a second factor first (POST /v1/staff/me/totp)",
                    )
            return await handler(request)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        guarded.__module__ = handler.__module__
        problem_codes = tuple(problems)
        if allowed:
            problem_codes = ("unauthenticated", "forbidden", *problem_codes)
        setattr(
            guarded,
            OPERATION_ATTR,
            Operation(
                summary=summary,
                tags=tag_names,
                roles=allowed,
                body=body,
                body_content_type=body_content_type,
                query=query,
                responses=dict(responses or {}),
                problems=problem_codes,
                headers=tuple(headers),
                personal_data=personal_data,
                before_second_factor=before_second_factor,
            ),
        )
        return guarded

    return decorate


def operation_of(handler: Any) -> Operation | None:
    return getattr(handler, OPERATION_ATTR, None)
