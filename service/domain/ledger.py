"""What the tamper-evident log records of each ledger entry, and what the service signs.

A leaf is the entry's canonical JSON — keys sorted, no spaces, UTF-8 — with the fields
an auditor needs to recompute the programme's totals and nothing that names a holder.
The text is made once, when the entry joins the log, and stored as it was hashed: it is
never made again from the ledger rows, so what an auditor downloads is what was signed.

A checkpoint is the log's size and root at a moment, signed as a compact JWS with the
service's Ed25519 key (the key of the JWKS), `typ` "yd-checkpoint+jwt".
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.domain.merkle import Node, leaf_hash, node_hash
from service.domain.pricing import CURRENCY
from service.domain.tokens import ALGORITHMS, SigningKey

CHECKPOINT_TYP = "yd-checkpoint+jwt"
KINDS = ("redemption", "reversal")


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """A redemption or a reversal as the log records it. A reversal carries the amounts
    it takes back (positive), and its redemption's voucher, offer and partner."""

    id: str
    kind: str
    redemption_id: str | None
    voucher_id: str
    offer_id: str
    partner_id: str
    holder_category: str
    purchase_amount: int
    discount_amount: int
    created_at: datetime
    #: An offline redemption's: when the till made it, and the rule it broke (if any).
    offline_at: datetime | None = None
    conflict: str | None = None


def canonical_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rfc3339_utc(moment: datetime) -> str:
    """One spelling of an instant, to the microsecond, in UTC with a `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def leaf_of(index: int, record: LedgerRecord) -> str:
    """The leaf text of `record` at log index `index` (docs/ledger.md)."""
    leaf: dict[str, Any] = {
        "index": index,
        "id": record.id,
        "kind": record.kind,
        "voucher_id": record.voucher_id,
        "offer_id": record.offer_id,
        "partner_id": record.partner_id,
        "holder_category": record.holder_category,
        "purchase_amount": record.purchase_amount,
        "discount_amount": record.discount_amount,
        "currency": CURRENCY,
        "created_at": rfc3339_utc(record.created_at),
    }
    if record.kind == "reversal":
        leaf["redemption_id"] = record.redemption_id
    # Facts of an offline redemption, only when there are any: every other leaf is the
    # same text as before offline tills existed (docs/ledger.md).
    if record.offline_at is not None:
        leaf["offline_at"] = rfc3339_utc(record.offline_at)
    if record.conflict is not None:
        leaf["conflict"] = record.conflict
    return canonical_json(leaf)


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as the log stores it, with the ledger row it was made from (None if that
    row is gone)."""

    index: int
    leaf: str
    record: LedgerRecord | None


def first_difference(
    start: int, end: int, stored: Sequence[StoredEntry], nodes: Mapping[Node, bytes]
) -> str | None:
    """What first differs in entries [start, end) of the stored log, if anything: an
    entry missing, a leaf that is not the one its ledger row makes, a stored leaf hash or
    subtree hash that is not the hash of what it covers. `nodes` holds the stored
    complete subtrees to check (each against its two children when both are given)."""
    for expected, entry in zip(range(start, end), stored, strict=False):
        if entry.index != expected:
            return f"entry {expected} is missing"
        if entry.record is None:
            return f"entry {expected}: its ledger row is gone"
        if leaf_of(expected, entry.record) != entry.leaf:
            return f"entry {expected}: the leaf differs from its ledger row {entry.record.id}"
        if nodes.get(Node(0, expected)) != leaf_hash(entry.leaf.encode()):
            return f"entry {expected}: the stored leaf hash differs from its leaf"
    if len(stored) < end - start:
        return f"entry {start + len(stored)} is missing"
    for node in sorted(nodes, key=lambda n: (n.level, n.index)):
        left = Node(node.level - 1, 2 * node.index)
        right = Node(node.level - 1, 2 * node.index + 1)
        halves = node.level and left in nodes and right in nodes
        if halves and node_hash(nodes[left], nodes[right]) != nodes[node]:
            return (
                f"entries {node.start}–{node.end - 1}: the stored subtree hash differs from "
                "its two halves"
            )
    return None


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    size: int
    root: bytes
    at: datetime
    jws: str


def sign(key: SigningKey, claims: Mapping[str, Any], typ: str) -> str:
    """A compact JWS the service publishes (a checkpoint, a statement): EdDSA under the
    JWKS's key, named by `kid`, of the `typ` that says what it is."""
    assert key.private_key is not None, "a retired key signs nothing"
    return jwt.encode(
        dict(claims), key.private_key, algorithm="EdDSA", headers={"kid": key.kid, "typ": typ}
    )


def sign_checkpoint(key: SigningKey, origin: str, size: int, root: bytes, at: datetime) -> str:
    claims = {"origin": origin, "size": size, "root": b64(root), "at": rfc3339_utc(at)}
    return sign(key, claims, CHECKPOINT_TYP)


def verify_signed(
    jws: str, public_keys: Mapping[str, Ed25519PublicKey], typ: str
) -> dict[str, Any]:
    """The payload of a compact JWS the service signed (a checkpoint or a statement):
    EdDSA only, under a key of `public_keys`, of the `typ` expected. ValueError says why
    not."""
    try:
        header = jwt.get_unverified_header(jws)
    except jwt.InvalidTokenError as error:
        raise ValueError(f"not a compact JWS: {error}") from None
    if header.get("typ") != typ:
        raise ValueError(f"typ is {header.get('typ')!r}, not {typ!r}")
    key = public_keys.get(str(header.get("kid")))
    if key is None:
        raise ValueError(f"signed with key {header.get('kid')!r}, which the JWKS does not hold")
    try:
        payload: dict[str, Any] = jwt.decode(
            jws, key, algorithms=ALGORITHMS, options={"verify_aud": False, "verify_exp": False}
        )
    except jwt.InvalidTokenError as error:
        raise ValueError(f"the signature does not verify: {error}") from None
    return payload
