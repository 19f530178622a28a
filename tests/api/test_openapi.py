"""The OpenAPI document covers every route and the docs page is self-contained."""

import re

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from service.api.http import operation_of
from service.domain.offers import KIND_FIELDS

#: Routes that serve files rather than API operations.
ASSET_PREFIXES = ("/docs/static",)


async def test_document_is_valid_openapi_3(client: TestClient) -> None:
    document = await (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    validate(document)


async def test_every_registered_route_is_documented(client: TestClient) -> None:
    document = await (await client.get("/openapi.json")).json()
    missing = []
    for route in client.app.router.routes():
        info = route.resource.get_info()
        template = info.get("formatter") or info.get("path") or info.get("prefix")
        if route.method == "HEAD" or template.startswith(ASSET_PREFIXES):
            continue
        if route.method.lower() not in document["paths"].get(template, {}):
            missing.append(f"{route.method} {template}")
        assert operation_of(route.handler) is not None, template
    assert not missing


async def test_every_operation_documents_its_problems(client: TestClient) -> None:
    document = await (await client.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            problem_statuses = [s for s in op["responses"] if s.startswith(("4", "5"))]
            assert problem_statuses, (method, path)
            if op.get("security"):
                assert "401" in op["responses"] and "403" in op["responses"], (method, path)


async def test_input_schemas_refuse_unknown_fields(client: TestClient) -> None:
    document = await (await client.get("/openapi.json")).json()
    assert document["components"]["schemas"]["PartnerCreate"]["additionalProperties"] is False


async def test_offer_bodies_are_one_schema_per_kind_told_apart_by_kind(
    client: TestClient,
) -> None:
    document = await (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    create = schemas["OfferCreate"]
    assert schemas["OfferUpdate"]["anyOf"][0] == {"$ref": "#/components/schemas/OfferUpdateByKind"}
    patch = schemas["OfferUpdateByKind"]
    for union in (create, patch):
        mapping = union["discriminator"]["mapping"]
        assert union["discriminator"]["propertyName"] == "kind"
        assert list(mapping) == list(KIND_FIELDS)
        assert [branch["$ref"] for branch in union["oneOf"]] == list(mapping.values())
    for kind, fields in KIND_FIELDS.items():
        variant = schemas[create["discriminator"]["mapping"][kind].rsplit("/", 1)[-1]]
        assert variant["properties"]["kind"]["enum"] == [kind]
        assert {"kind", fields[0]} <= set(variant["required"])
        assert variant["additionalProperties"] is False
        foreign = [name for other in KIND_FIELDS.values() for name in other if name not in fields]
        for name in foreign:
            assert variant["properties"][name]["enum"] == [None], (kind, name)


async def test_docs_page_loads_nothing_from_outside(client: TestClient) -> None:
    page = await client.get("/docs")
    assert page.status == 200
    html = await page.text()
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    for asset in re.findall(r"(?:src|href)=\"(/[^\"]+)\"", html):
        response = await client.get(asset)
        assert response.status == 200, asset
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


async def test_staff_sessions_are_documented_as_a_cookie_with_a_csrf_header_on_changes(
    client: TestClient,
) -> None:
    document = await (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["staffCookie"] == {
        **schemes["staffCookie"],
        "type": "apiKey",
        "in": "cookie",
        "name": "youdai_staff",
    }
    assert schemes["csrfToken"] == {
        **schemes["csrfToken"],
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
    }
    staff_operations = 0
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            cookie = [entry for entry in op.get("security", []) if "staffCookie" in entry]
            if not cookie:
                continue
            staff_operations += 1
            # Reads need the cookie alone; every change needs the CSRF header with it.
            assert ("csrfToken" in cookie[0]) == (method not in ("get", "head")), (method, path)
    assert staff_operations >= 30
    partners = document["paths"]["/v1/partners"]
    assert partners["post"]["security"] == [{"bearer": []}, {"staffCookie": [], "csrfToken": []}]
    assert partners["get"]["security"] == [{"bearer": []}, {"staffCookie": []}]
