"""The tamper-evident log's answers (docs/ledger.md): hashes are standard base64 (RFC 4648 §4)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.common import PageQuerySchema, StrictSchema

_BASE64 = {"format": "byte", "description": "SHA-256, standard base64."}
#: Far above any log this service will hold, far below a bigint's overflow.
MAX_INDEX = 2**53


def LogPosition(*, minimum: int, **kwargs: object) -> fields.Integer:
    """A log index or size in a query string."""
    return fields.Integer(validate=validate.Range(min=minimum, max=MAX_INDEX), **kwargs)  # type: ignore[arg-type]


class CheckpointSchema(Schema):
    size = fields.Integer(required=True, metadata={"description": "Entries in the log."})
    root = fields.String(required=True, metadata=_BASE64)
    at = fields.DateTime(required=True)
    jws = fields.String(
        required=True,
        metadata={
            "description": 'The checkpoint `{"origin", "size", "root", "at"}` as a compact '
            'JWS (EdDSA, `typ` "yd-checkpoint+jwt"), verifiable against '
            "/.well-known/jwks.json."
        },
    )


class LedgerEntriesQuerySchema(PageQuerySchema):
    """`start` (default 0) or the `cursor` of the previous page (which wins)."""

    start = LogPosition(minimum=0, load_default=0, metadata={"description": "First index."})


class LedgerEntrySchema(Schema):
    index = fields.Integer(required=True)
    leaf = fields.String(
        required=True,
        metadata={"description": "The exact canonical JSON text hashed (UTF-8)."},
    )


class LedgerEntryPageSchema(Schema):
    items = fields.List(fields.Nested(LedgerEntrySchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class InclusionQuerySchema(StrictSchema):
    index = LogPosition(minimum=0, required=True)
    size = LogPosition(
        minimum=1,
        required=True,
        metadata={"description": "The tree size the proof is for, e.g. a checkpoint's."},
    )


class InclusionProofSchema(Schema):
    index = fields.Integer(required=True)
    size = fields.Integer(required=True)
    leaf_hash = fields.String(required=True, metadata=_BASE64)
    path = fields.List(fields.String(metadata=_BASE64), required=True)


class ConsistencyQuerySchema(StrictSchema):
    from_ = LogPosition(minimum=1, required=True, data_key="from")
    to = LogPosition(minimum=1, required=True)


class ConsistencyProofSchema(Schema):
    from_ = fields.Integer(required=True, data_key="from")
    to = fields.Integer(required=True)
    path = fields.List(fields.String(metadata=_BASE64), required=True)
