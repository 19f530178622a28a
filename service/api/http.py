"""What every handler uses: reading input through schemas, answering JSON, declaring
who may call it and how it is documented.

Handlers stay thin: they parse with a schema, call the domain or the SQL module of
their aggregate, and serialise with a schema. Errors are raised as ApiError and
rendered by the middleware.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web
from marshmallow import Schema, ValidationError

from schemas.common import messages_to_field_errors
from service.app_keys import SETTINGS
from service.domain.auth import AnyRole, Principal, Role, StaffPrincipal
from service.domain.errors import ApiError, FieldError, field_errors, validation_error
from service.domain.language import CHINESE, ENGLISH, Said, message_of
from service.domain.negotiation import preferred_language
from service.domain.pagination import Page, PageRequest, decode_cursor
from service.domain.periods import parse_bound
from service.domain.throttle import resolve_client

CallerT = TypeVar("CallerT", bound=Principal)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PRINCIPAL_KEY = web.RequestKey("principal", Principal)
CLIENT_ADDRESS_KEY = web.RequestKey("client_address", str)


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


def page_response(page: Page[Any], to_item: Callable[[Any], Any]) -> web.Response:
    """A list answer: `{"items": [...], "next_cursor": "…" | null}` (docs/api.md)."""
    return json_response(
        {"items": [to_item(item) for item in page.items], "next_cursor": page.next_cursor}
    )


def _schema_errors(error: ValidationError) -> ApiError:
    return field_errors(
        [FieldError(name, message) for name, message in messages_to_field_errors(error)]
    )


#: Deeper JSON is refused before it is parsed (docs/api.md): no parser recursion, ever.
MAX_JSON_DEPTH = 64

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _bad_body(message: str, field_name: str = "body") -> ApiError:
    if field_name != "body":
        return field_errors([FieldError(field_name, message)])
    return ApiError("validation_error", message, errors=[FieldError(field_name, message)])


def json_depth(raw: bytes) -> int:
    """How deeply `raw` nests arrays and objects, counted without recursion or parsing:
    strings are blanked out, then brackets are summed (C loops, fast on 1 MiB)."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_A_BRACKET)
    if not brackets:
        return 0
    return max(itertools.accumulate(_DEPTH_STEP[b] for b in brackets))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _bad_body(Said("is given more than once", "出现了不止一次"), _printable(key))
            seen.add(key)
    return data


def _printable(text: str) -> str:
    """`text` safe to show back: a lone surrogate becomes its escape (\\ud800)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _refuse_lone_surrogates(data: Any) -> None:
    """Refuse text that is not valid Unicode (a lone surrogate, from a `\\ud800` escape),
    in a value or a key, naming the field. Iterative: depth is bounded already."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                raise _bad_body(
                    Said(
                        "is not valid Unicode text (a lone surrogate)",
                        "不是有效的 Unicode 文本（含孤立代理项）",
                    ),
                    where or "body",
                )
        elif isinstance(value, dict):
            for key, inner in value.items():
                name = f"{where}.{key}" if where else key
                if not _is_unicode(key):
                    raise _bad_body(
                        Said(
                            "is not valid Unicode text (a lone surrogate in a key)",
                            "不是有效的 Unicode 文本（键中含孤立代理项）",
                        ),
                        _printable(name),
                    )
                stack.append((name, inner))
        elif isinstance(value, list):
            stack.extend((f"{where}[{index}]", inner) for index, inner in enumerate(value))


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_json_body(raw: bytes) -> Any:
    """JSON as docs/api.md accepts it, or validation_error: valid UTF-8 and Unicode, at most
    MAX_JSON_DEPTH levels, finite numbers, no key twice."""
    if not raw:
        raise _bad_body(Said("A JSON body is required", "需要 JSON 请求体"))
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise _bad_body(f"The body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(
            raw,
            parse_constant=_refuse_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except (ValueError, UnicodeDecodeError, RecursionError):
        # ValueError covers bad JSON, bad UTF-8 and integers longer than Python converts.
        raise _bad_body(Said("The body is not valid JSON", "请求体不是有效的 JSON")) from None
    _refuse_lone_surrogates(data)
    return data


async def read_json(request: web.Request, schema: Schema) -> dict[str, Any]:
    """The request body parsed as JSON and loaded through `schema`, or validation_error."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        # docs/api.md files an oversized body with the other bad input: validation_error.
        raise _bad_body(Said("The body is larger than 1 MiB", "请求体大于 1 MiB")) from None
    data = parse_json_body(raw)
    if not isinstance(data, dict):
        raise _bad_body(Said("The body must be a JSON object", "请求体必须是 JSON 对象"))
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
            raise validation_error(name, message_of(error)) from None
    start, end_ = bounds["from"], bounds["to"]
    if start is not None and end_ is not None and end_ < start:
        raise validation_error("to", Said("is before from", "早于 from"))
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
            raise validation_error(
                field or "body", Said("must not contain the NUL character", "不得包含 NUL 字符")
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
            raise validation_error(name, Said("given more than once", "出现了不止一次"))
        data[name] = values[0]
    return load(schema, data)


def page_request(query: dict[str, Any]) -> PageRequest:
    """The page a list query asks for (`limit`, `cursor` loaded by PageQuerySchema)."""
    cursor = query.get("cursor")
    return PageRequest(limit=query["limit"], after_id=decode_cursor(cursor) if cursor else None)


def principal(request: web.Request) -> Principal:
    """The authenticated caller; `allow` guarantees one is present."""
    caller: Principal = request[PRINCIPAL_KEY]
    return caller


def caller_as(request: web.Request, kind: type[CallerT]) -> CallerT:
    """The caller as the one kind the operation's roles admit (a ScannerKey for a route
    of scanners only, a HolderSession for a holder's): ids it always has are not None."""
    caller = principal(request)
    if not isinstance(caller, kind):
        # Unreachable while `roles` and the kinds agree; refuse rather than guess.
        raise ApiError(
            "forbidden", Said("This caller may not use this operation", "此调用方无权执行此操作")
        )
    return caller


@dataclass
class Operation:
    """OpenAPI facts about one handler, read by service.api.docs."""

    summary: str
    tags: tuple[str, ...] = ()
    roles: tuple[AnyRole, ...] = ()  # empty: anyone, no key needed
    personal_data: bool = False  # holders' personal data: never for a bureau_auditor
    before_second_factor: bool = False  # open to staff who must still enrol TOTP
    #: a schema, or the OpenAPI schema itself of a body that is not JSON (a CSV file)
    body: Schema | type[Schema] | dict[str, Any] | None = None
    body_content_type: str = "application/json"
    query: type[Schema] | None = None
    responses: dict[int, Schema | type[Schema] | str | None] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    #: (name, required, description[, OpenAPI schema])
    headers: tuple[tuple[Any, ...], ...] = ()


OPERATION_ATTR = "__youdai_operation__"


def _documented_problems(allowed: tuple[AnyRole, ...], problems: Iterable[str]) -> tuple[str, ...]:
    """An operation's problems as documented: its own, and those of admitting its caller."""
    codes = tuple(problems)
    if allowed:
        codes = ("unauthenticated", "forbidden", *codes)
    if Role.HOLDER in allowed:
        # A holder's session stops working when the holder or the card does.
        codes = (*codes, "holder_inactive")
    return codes


def _admit(
    request: web.Request,
    allowed: tuple[AnyRole, ...],
    personal_data: bool,
    before_second_factor: bool,
) -> None:
    """401 without a caller, 403 for a caller the operation's roles do not admit (or a
    person who must enrol a second factor first)."""
    caller = request.get(PRINCIPAL_KEY)
    if caller is None:
        raise ApiError(
            "unauthenticated",
            Said("Send Authorization: Bearer <key>", "请发送 Authorization: Bearer <密钥>"),
        )
    read_only = request.method in ("GET", "HEAD")
    if not caller.may_call(allowed, read_only=read_only, personal_data=personal_data):
        raise ApiError(
            "forbidden",
            Said("This key's role may not call this endpoint", "此密钥的角色无权调用此接口"),
        )
    if isinstance(caller, StaffPrincipal) and caller.must_enrol_totp and not before_second_factor:
        raise ApiError(
            "forbidden",
            Said(
                "Enrol a second factor first (POST /v1/staff/me/totp)",
                "请先绑定第二因素（POST /v1/staff/me/totp）",
            ),
        )


def operation(
    summary: str,
    *,
    roles: Iterable[AnyRole] = (),
    tags: Iterable[str] = (),
    body: Schema | type[Schema] | dict[str, Any] | None = None,
    body_content_type: str = "application/json",
    query: type[Schema] | None = None,
    responses: dict[int, Any] | None = None,
    problems: Iterable[str] = (),
    headers: Iterable[tuple[Any, ...]] = (),
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
    # Holders' records are personal data wherever they are served (docs/product.md, docs/api.md).
    personal_data = personal_data or "holders" in tag_names

    def decorate(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if allowed:
                _admit(request, allowed, personal_data, before_second_factor)
            if body is not None:
                refuse_other_media_types(request, body_content_type)
            return await handler(request)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        guarded.__module__ = handler.__module__
        problem_codes = _documented_problems(allowed, problems)
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


def client_address(request: web.Request) -> str:
    """The caller's address, resolved once per request: the peer, or X-Forwarded-For's
    right-most hop that is not a proxy of YOUDAI_TRUSTED_PROXIES (domain.throttle)."""
    cached = request.get(CLIENT_ADDRESS_KEY)
    if cached is None:
        cached = resolve_client(
            request.remote,
            request.headers.getall("X-Forwarded-For", []),
            request.app[SETTINGS].trusted_proxies,
        )
        request[CLIENT_ADDRESS_KEY] = cached
    return cached


def problem_language(request: web.BaseRequest) -> str:
    """The language a problem is said in (docs/api.md): Chinese when Accept-Language prefers
    zh, English otherwise."""
    return preferred_language(
        request.headers.get("Accept-Language"), {"zh": CHINESE, "en": ENGLISH}, ENGLISH
    )


def refuse_other_media_types(request: web.Request, declared: str) -> None:
    """docs/api.md: a body of another Content-Type than the operation declares (or none)
    is 415. This also keeps another site's "simple" cross-site POST (text/plain) out."""
    charset = (request.charset or "utf-8").lower()
    if request.content_type.lower() != declared or charset not in ("utf-8", "utf8"):
        raise ApiError(
            "unsupported_media_type",
            Said(
                f"Send the body as Content-Type: {declared} (UTF-8)",
                f"请以 Content-Type: {declared}（UTF-8）发送请求体",
            ),
        )


def operation_of(handler: Any) -> Operation | None:
    return getattr(handler, OPERATION_ATTR, None)
