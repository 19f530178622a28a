"""The per-kind variants the OpenAPI document shows for offer bodies answer what the
server answers: its schema, then the kind rule of service.domain.offers. Every body
of kind (or none) x each kind field left out, null or set is tried, no database."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from marshmallow import Schema, ValidationError

from schemas.common import messages_to_field_errors
from schemas.offers import OfferCreateSchema, OfferUpdateSchema
from service.domain.errors import ApiError
from service.domain.offers import (
    ALL_KIND_FIELDS,
    EDITABLE,
    KIND_FIELDS,
    KINDS,
    apply_changes,
    check_kind_fields,
    check_new_offer,
    plan_update,
)

_LEFT_OUT = object()
#: A value each kind field accepts on its own (schema ranges), and null.
_STATES = (_LEFT_OUT, None, 500)


def _bodies() -> list[dict[str, Any]]:
    bodies = []
    for kind in (_LEFT_OUT, *KINDS):
        for states in itertools.product(_STATES, repeat=len(ALL_KIND_FIELDS)):
            body: dict[str, Any] = {"title": "优待"}
            if kind is not _LEFT_OUT:
                body["kind"] = kind
            body.update(
                (name, state)
                for name, state in zip(ALL_KIND_FIELDS, states, strict=True)
                if state is not _LEFT_OUT
            )
            bodies.append(body)
    return bodies


BODIES = _bodies()


def _loads(schema: type[Schema], body: dict[str, Any]) -> bool:
    try:
        schema().load(body)
    except ValidationError:
        return False
    return True


def _kind_rule_holds(offer: dict[str, Any]) -> bool:
    try:
        check_kind_fields(offer)
    except ApiError:
        return False
    return True


def _stored(kind: str) -> dict[str, Any]:
    """A well-formed offer of `kind`, as apply_changes reads one."""
    offer = dict.fromkeys(EDITABLE)
    offer.update(kind=kind, title="优待", description="", status="draft", uses_per_voucher=1)
    offer[KIND_FIELDS[kind][0]] = 500
    return offer


def test_every_kind_has_a_create_and_an_update_variant() -> None:
    create, update = OfferCreateSchema.openapi_variants, OfferUpdateSchema.openapi_variants
    assert create is not None and update is not None
    assert list(create.by_value) == list(KINDS) == list(update.by_value)
    assert len(update.otherwise) == len(KINDS)
    assert create.field == update.field == "kind"


def test_a_create_body_fits_one_variant_exactly_when_the_server_accepts_it() -> None:
    variants = OfferCreateSchema.openapi_variants
    assert variants is not None
    for body in BODIES:
        server = _loads(OfferCreateSchema, body) and _kind_rule_holds(
            OfferCreateSchema().load(body)
        )
        fitting = [v for v in variants.by_value.values() if _loads(v, body)]
        assert len(fitting) <= 1, body  # oneOf: kinds exclude each other
        assert (len(fitting) == 1) == server, body


@pytest.mark.parametrize("kind", KINDS)
def test_a_create_variant_names_the_fields_the_kind_rule_names(kind: str) -> None:
    variant = OfferCreateSchema.openapi_variants.by_value[kind]  # type: ignore[union-attr]
    for body in (b for b in BODIES if b.get("kind") == kind):
        try:
            check_kind_fields(OfferCreateSchema().load(body))
            expected = set()
        except ApiError as error:
            expected = {(e.field, e.message) for e in error.errors}
        try:
            variant().load(body)
            named = set()
        except ValidationError as error:
            named = set(messages_to_field_errors(error))
        assert named == expected, body


def test_a_patch_body_fits_the_document_exactly_when_some_offer_would_take_it() -> None:
    """The document cannot know the offer a PATCH changes: a body fits it when an offer of
    some kind would take it (switching kind without the new kind's field is refused by
    the offer alone, as the variants' descriptions say)."""
    variants = OfferUpdateSchema.openapi_variants
    assert variants is not None
    for body in BODIES:
        server = _loads(OfferUpdateSchema, body) and any(
            _kind_rule_holds(apply_changes(_stored(kind), OfferUpdateSchema().load(body)))
            for kind in KINDS
        )
        with_kind = [v for v in variants.by_value.values() if _loads(v, body)]
        without_kind = [v for v in variants.otherwise if _loads(v, body)]
        assert len(with_kind) <= 1, body
        assert (len(with_kind) == 1 or bool(without_kind)) == server, body


def test_the_examples_the_docs_page_shows_are_accepted() -> None:
    create, update = OfferCreateSchema.openapi_variants, OfferUpdateSchema.openapi_variants
    assert create is not None and create.example is not None
    assert update is not None and update.example is not None
    check_new_offer(OfferCreateSchema().load(dict(create.example)))
    draft = {**_stored("percent_off"), "redeemed_count": 0}
    assert plan_update(draft, OfferUpdateSchema().load(dict(update.example))) == {
        "status": ["draft", "active"]
    }
