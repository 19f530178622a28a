"""The OpenAPI 3 document, generated from the route table and the marshmallow schemas,
and a page to read it (Swagger UI, served from the swagger-ui-bundle wheel)."""

from __future__ import annotations

import inspect
import re
from functools import cache
from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema
from swagger_ui_bundle import swagger_ui_path

import service
from schemas.common import ProblemSchema, Variants
from service.api.http import json_response, operation, operation_of
from service.api.problems import STATUS
from service.domain.auth import Role, staff_roles_admitted

OPENAPI_KEY = web.AppKey("openapi", dict)

#: Header values are printable ASCII (docs/api.md; middleware.refuse_unprintable_headers).
_PRINTABLE = "^[\\x20-\\x7e]+$"
_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_DESCRIPTION = """\
youdai runs a veterans-affairs bureau's partnership programme: partner enterprises
give holders of the preferential-treatment card (优待证) discounts; holders show
short-lived signed QR vouchers; merchant scanners redeem them; every discount is
recorded and totalled exactly.

Errors are `application/problem+json` with a stable `code`. Money is integer fen
(CNY). Lists are paginated with `limit` and `cursor` and answer
`{"items": [...], "next_cursor": ...}`.
"""


def _schema_name(schema: Schema | type[Schema]) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name[: -len("Schema")] if name.endswith("Schema") and name != "Schema" else name


def _schema_ref(spec: APISpec, schema: Schema | type[Schema]) -> Any:
    """Register the schema once under its own name; return what apispec accepts inline."""
    name = _schema_name(schema)
    if name not in spec.components.schemas:
        variants = getattr(schema, "openapi_variants", None)
        if variants is None:
            spec.components.schema(name, schema=schema)
        else:
            spec.components.schema(name, _variants(spec, schema, variants))
    return name


def _variants(spec: APISpec, schema: Schema | type[Schema], variants: Variants) -> dict[str, Any]:
    """A body whose fields depend on one field: oneOf its variants with a discriminator,
    and anyOf that (as <Name>By<Field>) and the variants that leave the field out, if any."""
    names = {value: _variant_ref(spec, variant) for value, variant in variants.by_value.items()}
    document: dict[str, Any] = {
        "oneOf": list(names.values()),
        "discriminator": {
            "propertyName": variants.field,
            "mapping": {value: f"#/components/schemas/{name}" for value, name in names.items()},
        },
    }
    if variants.otherwise:
        by_field = f"{_schema_name(schema)}By{variants.field.capitalize()}"
        spec.components.schema(by_field, document)
        document = {"anyOf": [by_field, *(_variant_ref(spec, v) for v in variants.otherwise)]}
    if schema.__doc__:
        document["description"] = inspect.cleandoc(schema.__doc__)
    if variants.example is not None:
        document["example"] = dict(variants.example)
    return document


def _variant_ref(spec: APISpec, variant: type[Schema]) -> str:
    """Register a variant, described by its docstring (set here, not as Meta.description,
    which would make apispec drop the variant's additionalProperties: false)."""
    name = _schema_ref(spec, variant)
    if variant.__doc__:
        spec.components.schemas[name]["description"] = inspect.cleandoc(variant.__doc__)
    return name


def build_openapi(app: web.Application) -> dict[str, Any]:
    spec = APISpec(
        title="youdai",
        version=service.__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={"description": _DESCRIPTION},
    )
    spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`yd_…`) or a holder session token.",
        },
    )
    spec.components.security_scheme(
        "staffCookie",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": "youdai_staff",
            "description": "A staff session (POST /v1/staff-sessions sets it): HttpOnly, "
            "SameSite=Strict, 30 minutes idle, 12 hours at most.",
        },
    )
    spec.components.security_scheme(
        "csrfToken",
        {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRF-Token",
            "description": "The session's `csrf_token`: required with the staff cookie on "
            "every method but GET and HEAD (403 `csrf_failed` without it).",
        },
    )
    spec.components.schema("Problem", schema=ProblemSchema)
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        op = operation_of(route.handler)
        info = route.resource.get_info() if route.resource else {}
        template = info.get("formatter") or info.get("path")
        if op is None or template is None:
            continue
        paths.setdefault(template, {})[route.method.lower()] = _operation(spec, template, route, op)
    for template, operations in paths.items():
        spec.path(path=template, operations=operations)
    return _only_null_where_nullable(spec.to_dict())


def _only_null_where_nullable(document: Any) -> Any:
    """apispec writes a nullable Nested field as anyOf [{type: object, nullable: true},
    $ref], whose first branch admits any object ({} included). Make it admit null only."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for index, branch in enumerate(node.get("anyOf", [])):
                if branch == {"type": "object", "nullable": True}:
                    node["anyOf"][index] = {**branch, "enum": [None]}
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return document


def _operation(spec: APISpec, template: str, route: Any, op: Any) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(template)
    ]
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    for name, required, description, *schema in op.headers:
        parameters.append(
            {
                "in": "header",
                "name": name,
                "required": required,
                "description": description,
                "schema": schema[0]
                if schema
                else {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _PRINTABLE},
            }
        )
    document: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{route.method.lower()}_{route.handler.__name__}",
        "tags": list(op.tags),
        "responses": _responses(spec, op, route.method),
    }
    if route.handler.__doc__:
        document["description"] = inspect.cleandoc(route.handler.__doc__)
    if parameters:
        document["parameters"] = parameters
    if op.roles:
        read_only = route.method in ("GET", "HEAD")
        staff = staff_roles_admitted(op.roles, read_only=read_only, personal_data=op.personal_data)
        keys = [role for role in op.roles if isinstance(role, Role)]
        # A staff session authenticates by cookie; a change also needs the CSRF header.
        cookie: dict[str, list[str]] = {"staffCookie": []}
        if not read_only:
            cookie["csrfToken"] = []
        document["security"] = ([{"bearer": []}] if keys else []) + ([cookie] if staff else [])
        callers = [*map(str, keys), *(f"staff {role}" for role in staff)]
        document["description"] = (
            document.get("description", "") + f"\n\nCallers: {', '.join(callers)}."
        ).strip()
    if op.body is not None:
        content: dict[str, Any]
        if isinstance(op.body, (Schema, type)):
            content = {"schema": _schema_ref(spec, op.body)}
        else:
            content = {"schema": op.body}
        document["requestBody"] = {"required": True, "content": {op.body_content_type: content}}
    return document


def _responses(spec: APISpec, op: Any, method: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, body in op.responses.items():
        if body is None or isinstance(body, str):
            responses[str(status)] = {"description": body or "Success"}
        elif isinstance(body, dict):
            responses[str(status)] = body
        else:
            responses[str(status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": _schema_ref(spec, body)}},
            }
    codes = list(op.problems)
    # Any route: a request header that is not printable ASCII (docs/api.md).
    if "validation_error" not in codes:
        codes.append("validation_error")
    # Any change: a live staff cookie sent without its X-CSRF-Token (docs/staff.md), also on a
    # route anyone may call (the middleware checks it before the handler).
    if method not in ("GET", "HEAD") and "csrf_failed" not in codes:
        codes.append("csrf_failed")
    if op.body is not None and "unsupported_media_type" not in codes:
        codes.append("unsupported_media_type")  # decided for every body: http.operation
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(STATUS[code], []).append(code)
    by_status.setdefault(500, ["internal_error"])
    by_status.setdefault(503, ["database_unavailable"])
    for status, codes in sorted(by_status.items()):
        responses[str(status)] = {
            "description": "Problem: " + ", ".join(f"`{c}`" for c in codes),
            "content": {"application/problem+json": {"schema": "Problem"}},
        }
    return responses


@operation("This OpenAPI 3 document", tags=["docs"], responses={200: "The OpenAPI document"})
async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI_KEY])


@cache
def _docs_page() -> str:
    return """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>youdai API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>"""


#: Swagger UI sets inline styles; scripts still come only from this service.
_DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

_INIT_JS = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  deepLinking: true, validatorUrl: null});
"""


@operation("A page to read the API document", tags=["docs"], responses={200: "HTML page"})
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(
        text=_docs_page(),
        content_type="text/html",
        headers={"Content-Security-Policy": _DOCS_CSP, "Referrer-Policy": "no-referrer"},
    )


@operation("Script that starts the docs page", tags=["docs"], responses={200: "JavaScript"})
async def docs_init(request: web.Request) -> web.Response:
    return web.Response(text=_INIT_JS, content_type="application/javascript")


def docs_routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/openapi.json", openapi_json),
        web.get("/docs", docs_page),
        web.get("/docs/init.js", docs_init),
        web.static("/docs/static", str(swagger_ui_path)),
    ]
