"""The signed annual statement (docs/ledger.md) and its verification without the service.

The statement is a compact JWS (EdDSA, `typ` "yd-statement+jwt") whose payload holds the
programme's figures for a period — the summary's, totals by holder category and by
partner — and the log (size, root) that holds every entry of the period. `verify` is all
an auditor needs beside the JWKS and the exported entries: it checks the signature,
recomputes the root from the first `size` entries, and recomputes every figure the
entries determine. Pure: it takes texts and returns a verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.domain import merkle
from service.domain.ledger import canonical_json, unb64, verify_signed
from service.domain.reports import LATER_MEASURES, MEASURES

STATEMENT_TYP = "yd-statement+jwt"


@dataclass
class Tally:
    """The four measures of the discounts report, from log entries: a reversal counts
    once and takes back its amounts, on its own date."""

    redemptions: int = 0
    reversals: int = 0
    purchase_total: int = 0
    discount_total: int = 0
    offline: int = 0
    conflicts: int = 0

    def add(self, leaf: Mapping[str, Any]) -> None:
        sign = 1 if leaf["kind"] == "redemption" else -1
        if sign == 1:
            self.redemptions += 1
            self.offline += "offline_at" in leaf
            self.conflicts += "conflict" in leaf
        else:
            self.reversals += 1
        self.purchase_total += sign * leaf["purchase_amount"]
        self.discount_total += sign * leaf["discount_amount"]

    def figures(self) -> dict[str, int]:
        return {measure: getattr(self, measure) for measure in MEASURES}


@dataclass
class EntryFigures:
    """What the entries of a period say: the totals, by holder category and by partner,
    and the first and last index of the period's entries."""

    totals: Tally = field(default_factory=Tally)
    by_category: dict[str, Tally] = field(default_factory=dict)
    by_partner: dict[str, Tally] = field(default_factory=dict)
    first_index: int | None = None
    last_index: int | None = None


def figures_of(
    leaves: Iterable[Mapping[str, Any]], starts_at: str, ends_before: str
) -> EntryFigures:
    """The figures of the entries whose `created_at` lies in [starts_at, ends_before)
    (RFC 3339 instants, compared as instants)."""
    start, end = _instant(starts_at), _instant(ends_before)
    figures = EntryFigures()
    for leaf in leaves:
        if not start <= _instant(leaf["created_at"]) < end:
            continue
        figures.totals.add(leaf)
        figures.by_category.setdefault(leaf["holder_category"], Tally()).add(leaf)
        figures.by_partner.setdefault(leaf["partner_id"], Tally()).add(leaf)
        index = leaf["index"]
        figures.first_index = (
            index if figures.first_index is None else min(figures.first_index, index)
        )
        figures.last_index = index if figures.last_index is None else max(figures.last_index, index)
    return figures


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Verdict:
    verified: bool
    message: str  # the first thing that differs, or the totals verified
    claims: Mapping[str, Any] | None = None


def public_keys_of(jwks_text: str) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document (as /.well-known/jwks.json publishes them)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in json.loads(jwks_text).get("keys", []):
        key = jwt.PyJWK(jwk).key
        if isinstance(key, Ed25519PublicKey) and isinstance(jwk.get("kid"), str):
            keys[jwk["kid"]] = key
    return keys


def verify(statement: str, jwks_text: str, entry_lines: Iterable[str]) -> Verdict:
    """Check a statement against the JWKS and the exported entries (one leaf a line).
    Entries beyond the statement's log size are ignored."""
    try:
        claims = verify_signed(statement.strip(), public_keys_of(jwks_text), STATEMENT_TYP)
    except ValueError as error:
        return Verdict(False, f"signature: {error}")
    log = claims["log"]
    size = log["size"]
    leaves: list[dict[str, Any]] = []
    hashes: list[bytes] = []
    for index, line in enumerate(entry_lines):
        if index == size:
            break
        text = line.rstrip("\n")
        try:
            leaf = json.loads(text)
        except ValueError:
            return Verdict(False, f"entry {index}: not JSON")
        if canonical_json(leaf) != text:
            return Verdict(False, f"entry {index}: not in canonical form")
        if leaf.get("index") != index:
            return Verdict(False, f"entry {index}: its leaf says index {leaf.get('index')}")
        leaves.append(leaf)
        hashes.append(merkle.leaf_hash(text.encode()))
    if len(leaves) < size:
        return Verdict(False, f"the entries file holds {len(leaves)} entries; the log {size}")
    if merkle.root_of(iter(hashes))[1] != unb64(log["root"]):
        return Verdict(False, f"the first {size} entries do not hash to the statement's root")
    difference = _first_figure_difference(claims, leaves)
    if difference is not None:
        return Verdict(False, difference)
    totals = ", ".join(f"{name} {claims[name]}" for name in _stated(claims))
    period = claims["period"]
    return Verdict(
        True,
        f"statement verified: {period['from']} to {period['to']}, {totals} "
        f"({claims['currency']}, fen), log size {size}",
        claims,
    )


def _first_figure_difference(
    claims: Mapping[str, Any], leaves: Sequence[Mapping[str, Any]]
) -> str | None:
    period = claims["period"]
    found = figures_of(leaves, period["starts_at"], period["ends_before"])
    stated: list[tuple[str, Any, Any]] = [
        (name, claims[name], found.totals.figures()[name]) for name in _stated(claims)
    ]
    stated += [
        ("log.first_index", claims["log"]["first_index"], found.first_index),
        ("log.last_index", claims["log"]["last_index"], found.last_index),
    ]
    for category, figures in sorted(claims["by_holder_category"].items()):
        tally = found.by_category.pop(category, Tally()).figures()
        stated += [
            (f"by_holder_category.{category}.{m}", figures[m], tally[m]) for m in _stated(figures)
        ]
    stated += [(f"by_holder_category.{c}", "nothing", "entries") for c in sorted(found.by_category)]
    for row in claims["by_partner"]:
        tally = found.by_partner.pop(row["partner_id"], Tally()).figures()
        name = f"by_partner.{row['partner_id']}"
        stated += [(f"{name}.{m}", row[m], tally[m]) for m in _stated(row)]
    stated += [(f"by_partner.{p}", "nothing", "entries") for p in sorted(found.by_partner)]
    for name, says, recomputed in stated:
        if says != recomputed:
            return f"{name}: the statement says {says}, the entries give {recomputed}"
    return None


def _stated(figures: Mapping[str, Any]) -> tuple[str, ...]:
    """The measures a statement states: a statement signed before offline tills existed
    has no `offline` and `conflicts`, and is verified on the others."""
    return tuple(m for m in MEASURES if m in figures or m not in LATER_MEASURES)
