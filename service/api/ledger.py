"""The tamper-evident log (docs/ledger.md): its latest signed checkpoint, its entries, and the
proofs that let anyone check an entry or a later checkpoint against one they hold."""

from __future__ import annotations

from aiohttp import web

from schemas.ledger import (
    CheckpointSchema,
    ConsistencyProofSchema,
    ConsistencyQuerySchema,
    InclusionProofSchema,
    InclusionQuerySchema,
    LedgerEntriesQuerySchema,
    LedgerEntryPageSchema,
)
from service.api.http import json_response, operation, principal, read_query
from service.app_keys import POOL
from service.domain.auth import Role
from service.domain.ledger import b64
from service.domain.pagination import decode_cursor, encode_cursor
from service.flows import ledger as ledger_flow

TAGS = ["ledger"]

_entries_query = LedgerEntriesQuerySchema()
_inclusion_query = InclusionQuerySchema()
_consistency_query = ConsistencyQuerySchema()
_checkpoint_out = CheckpointSchema()
_entries_out = LedgerEntryPageSchema()
_inclusion_out = InclusionProofSchema()
_consistency_out = ConsistencyProofSchema()


@operation(
    "The latest signed checkpoint of the log",
    roles=[Role.ADMIN],
    tags=TAGS,
    responses={200: CheckpointSchema},
    problems=["not_found"],
)
async def checkpoint(request: web.Request) -> web.Response:
    """Signed at least once a minute while entries arrive; `not_found` before the first."""
    latest = await ledger_flow.latest_checkpoint(request.app[POOL])
    return json_response(
        _checkpoint_out.dump(
            {"size": latest.size, "root": b64(latest.root), "at": latest.at, "jws": latest.jws}
        )
    )


@operation(
    "The log's entries in index order, each leaf as the exact text hashed",
    roles=[Role.ADMIN],
    tags=TAGS,
    query=LedgerEntriesQuerySchema,
    responses={200: LedgerEntryPageSchema},
)
async def entries(request: web.Request) -> web.Response:
    query = read_query(request, _entries_query)
    start = query["start"]
    if "cursor" in query:
        # Any cursor is a position (as in every list): one not made here is past the end.
        position = decode_cursor(query["cursor"])
        start = int(position) if position.isdigit() and len(position) < 19 else 2**62
    page = await ledger_flow.entries(request.app[POOL], start, query["limit"])
    return json_response(
        _entries_out.dump(
            {
                "items": [{"index": index, "leaf": leaf} for index, leaf in page.items],
                "next_cursor": None
                if page.next_start is None
                else encode_cursor(str(page.next_start)),
            }
        )
    )


@operation(
    "Proof that an entry is in the log of a given size (RFC 9162 §2.1.3)",
    roles=[Role.ADMIN, Role.PARTNER],
    tags=TAGS,
    query=InclusionQuerySchema,
    responses={200: InclusionProofSchema},
    problems=["not_found"],
)
async def inclusion_proof(request: web.Request) -> web.Response:
    """A partner caller may prove its own entries only; another partner's is not found,
    and so is a size the log has not reached."""
    query = read_query(request, _inclusion_query)
    proof = await ledger_flow.inclusion_proof(
        request.app[POOL], principal(request), query["index"], query["size"]
    )
    return json_response(
        _inclusion_out.dump(
            {
                "index": proof.index,
                "size": proof.size,
                "leaf_hash": b64(proof.leaf_hash),
                "path": [b64(node) for node in proof.path],
            }
        )
    )


@operation(
    "Proof that the log of size `to` extends the log of size `from` (RFC 9162 §2.1.4)",
    roles=[Role.ADMIN],
    tags=TAGS,
    query=ConsistencyQuerySchema,
    responses={200: ConsistencyProofSchema},
    problems=["not_found"],
)
async def consistency_proof(request: web.Request) -> web.Response:
    query = read_query(request, _consistency_query)
    path = await ledger_flow.consistency_proof(request.app[POOL], query["from_"], query["to"])
    return json_response(
        _consistency_out.dump(
            {"from_": query["from_"], "to": query["to"], "path": [b64(node) for node in path]}
        )
    )
