"""Every answer the API tests receive is checked against the live OpenAPI document.

The test apps get one more middleware, outermost (so it sees problems rendered by the
error middleware too): for each JSON or problem+json answer of a documented
operation, openapi-core validates status, media type and body against the operation's
response in the document that app serves at /openapi.json. Mismatches are collected
and fail the test that caused them (tests/conftest.py), naming operation and status.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from openapi_core import Config, OpenAPI
from openapi_core.contrib.aiohttp import AIOHTTPOpenAPIWebRequest, AIOHTTPOpenAPIWebResponse

from service.api.docs import build_openapi
from service.api.http import operation_of

_JSON_TYPES = ("application/json", "application/problem+json")
_FILE_ROUTES = ("/pages/", "/console/")
_DOCUMENTS: dict[str, OpenAPI] = {}  # one parsed document per distinct route table
# A started app's routes no longer change: its document is built once, not per answer
# (building it costs more than most requests; a 200-request burst spent 58 % there).
_OF_APP: weakref.WeakKeyDictionary[web.Application, OpenAPI] = weakref.WeakKeyDictionary()


def _openapi(app: web.Application) -> OpenAPI:
    if app not in _OF_APP:
        _OF_APP[app] = _parsed(build_openapi(app))
    return _OF_APP[app]


def _parsed(document: dict[str, Any]) -> OpenAPI:
    key = json.dumps(document, sort_keys=True, default=str)
    if key not in _DOCUMENTS:
        # problem+json is JSON (RFC 9457); openapi-core knows application/json only.
        config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
        _DOCUMENTS[key] = OpenAPI.from_dict(document, config=config)
    return _DOCUMENTS[key]


class Conformance:
    """The middleware and what it found."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.checked = 0

    def install(self, app: web.Application) -> None:
        app.middlewares.insert(0, self._middleware)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        resource = request.match_info.route.resource  # None when no route matched
        if (
            resource is not None
            and isinstance(response, web.Response)
            and response.content_type in _JSON_TYPES
            # 405 answers for a path, not for an operation (a fixed path's missing method
            # is routed to its sibling template's handler, which never runs).
            and response.status != 405
            # The pages' own files (their messages.json among them) are documented as
            # files, whatever their type: the API's answers are what is checked here.
            and not resource.canonical.startswith(_FILE_ROUTES)
            and operation_of(request.match_info.handler) is not None
        ):
            self._check(request, response)
        return response

    def _check(self, request: web.Request, response: web.Response) -> None:
        openapi = _openapi(request.app)
        self.checked += 1
        errors: list[Any] = list(
            openapi.iter_response_errors(
                AIOHTTPOpenAPIWebRequest(request, body=None), AIOHTTPOpenAPIWebResponse(response)
            )
        )
        for error in errors:
            cause = getattr(error, "__cause__", None) or error
            details = getattr(cause, "schema_errors", None)
            described = "; ".join(str(e.message) for e in details) if details else str(cause)
            self.violations.append(
                f"{request.method} {request.match_info.route.resource.canonical} → "
                f"{response.status}: {type(error).__name__}: {described[:500]}"
            )
