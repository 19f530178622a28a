"""The OpenAPI document covers every route and the docs page is self-contained."""

import re

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from service.api.http import operation_of

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


async def test_docs_page_loads_nothing_from_outside(client: TestClient) -> None:
    page = await client.get("/docs")
    assert page.status == 200
    html = await page.text()
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    for asset in re.findall(r"(?:src|href)=\"(/[^\"]+)\"", html):
        response = await client.get(asset)
        assert response.status == 200, asset
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
