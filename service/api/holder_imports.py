"""Holder import jobs: POST /v1/holders/import starts one, GET /v1/holder-imports/{id}
shows it (docs/api.md)."""

from __future__ import annotations

from aiohttp import web

from schemas.holders import HOLDER_IMPORT_BODY, HolderImportSchema
from service.api.http import json_response, operation, principal
from service.app_keys import IMPORTS, POOL
from service.domain.auth import Role
from service.domain.errors import ApiError
from service.domain.language import Said
from service.flows import holder_imports as imports_flow

TAGS = ["holders"]

_out = HolderImportSchema()

#: An import file may be larger than a JSON body (1 MiB): 16 MiB is ~200 000 holders.
MAX_IMPORT_BYTES = 16 * 1024 * 1024


@operation(
    "Import card holders from a CSV file, as a job",
    roles=[Role.ADMIN],
    tags=TAGS,
    body=HOLDER_IMPORT_BODY,
    body_content_type="text/csv",
    responses={202: HolderImportSchema},
    problems=["validation_error", "conflict", "payload_too_large"],
)
async def import_holders(request: web.Request) -> web.Response:
    """The whole file is checked first: if any line is bad the answer is 422 with the
    first 1 000 errors as {line, field, message} (the header is line 1), `error_count`
    for all of them, and nothing is written. A good file answers 202 with the job and
    `Location: /v1/holder-imports/{id}`, where its progress shows until it is
    `completed` (with the counts) or `failed` (with a `detail`, nothing written). No
    holder of the file is visible before the whole file is written. A second import
    while one runs is 409 conflict. A row whose fields and PIN match the stored holder is
    left alone, so the same file imported again gives created 0, updated 0. Up to 16 MiB."""
    data = await _read_csv(request)
    job = await request.app[IMPORTS].start(principal(request), data)
    return json_response(
        _out.dump(job), status=202, headers={"Location": f"/v1/holder-imports/{job.id}"}
    )


@operation(
    "Get a holder import job: its progress, then its counts or why it failed",
    roles=[Role.ADMIN],
    tags=TAGS,
    responses={200: HolderImportSchema},
    problems=["not_found"],
)
async def get_holder_import(request: web.Request) -> web.Response:
    """A job whose server stopped before it finished (a crash, SIGKILL, a shutdown) shows
    `failed`, and nothing of its file was written."""
    job = await imports_flow.get_import(request.app[POOL], request.match_info["import_id"])
    return json_response(_out.dump(job))


async def _read_csv(request: web.Request) -> bytes:
    """The file, read in chunks up to 16 MiB. Its Content-Type (text/csv, UTF-8) is
    checked before the handler runs, as for every body (http.operation)."""
    if (request.content_length or 0) > MAX_IMPORT_BYTES:
        raise ApiError(
            "payload_too_large",
            Said("An import file may be at most 16 MiB", "导入文件最大为 16 MiB"),
        )
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_IMPORT_BYTES:
            raise ApiError(
                "payload_too_large",
                Said("An import file may be at most 16 MiB", "导入文件最大为 16 MiB"),
            )
    return bytes(data)
