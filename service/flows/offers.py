"""Creating and managing offers: a partner its own, the bureau any partner's."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from service.db import audit as audit_db
from service.db import offers as offers_db
from service.domain.auth import Principal
from service.domain.errors import ApiError, validation_error
from service.domain.ids import new_id
from service.domain.language import Said
from service.domain.offers import (
    EDITABLE,
    Offer,
    check_new_offer,
    check_partner_accepts_offers,
    plan_update,
)
from service.domain.pagination import Page, PageRequest, page_of
from service.domain.terms import terms_of_offer
from service.flows import partners as partners_flow
from service.flows.database import Database, connection


def as_shown(offer: Offer, tz: ZoneInfo) -> dict[str, Any]:
    """An offer as its answers show it: its fields and its terms in words."""
    return {**asdict(offer), "terms": terms_of_offer(offer, tz)}


#: Set from the create body; status always starts as draft.
_CREATED = tuple(name for name in EDITABLE if name != "status")


def _json_safe(value: Any) -> Any:
    """Audit changes are JSON: moments as RFC 3339 text."""
    return value.isoformat() if isinstance(value, datetime) else value


def owner_of_new_offer(caller: Principal | None, partner_id: str | None) -> str:
    """Rule 5: a partner creates for itself only; the bureau names the partner."""
    if caller is None or caller.is_admin:
        if partner_id is None:
            raise validation_error(
                "partner_id",
                Said("required when an admin key creates an offer", "管理员密钥创建优惠时必填"),
            )
        return partner_id
    if partner_id is not None and partner_id != caller.partner_id:
        raise ApiError(
            "forbidden",
            Said(
                "A partner key creates offers for its own partner only",
                "合作商户密钥只能为本商户创建优惠",
            ),
        )
    assert caller.partner_id is not None  # a partner caller always has its partner
    return caller.partner_id


async def create(db: Database, caller: Principal | None, fields: dict[str, Any]) -> Offer:
    """A draft offer of the caller's partner (or, for the bureau, of fields["partner_id"])."""
    partner_id = owner_of_new_offer(caller, fields.get("partner_id"))
    check_new_offer(fields)
    values: dict[str, Any] = {"partner_id": partner_id}
    values.update((name, fields.get(name)) for name in _CREATED)
    values["description"] = values["description"] or ""
    values["eligible_categories"] = values["eligible_categories"] or []
    values["uses_per_voucher"] = values["uses_per_voucher"] or 1
    async with connection(db) as conn, conn.transaction():
        # An offer needs a partner that is not terminated; the share lock keeps it so
        # until this transaction ends.
        partner = await partners_flow.require(conn, partner_id, lock="SHARE")
        check_partner_accepts_offers(partner.status)
        offer = await offers_db.insert_offer(conn, new_id("offer"), values)
        created = {
            name: [None, _json_safe(getattr(offer, name))]
            for name in ("partner_id", *EDITABLE)
            if getattr(offer, name) is not None
        }
        await audit_db.record(conn, caller, "offer.create", "offer", offer.id, created)
    return offer


async def get(db: Database, caller: Principal, offer_id: str) -> Offer:
    """Rule 5: another partner's offer is not_found, as one that does not exist."""
    async with connection(db) as conn:
        offer = await offers_db.get_offer(conn, offer_id)
    if offer is None or not caller.can_see_partner(offer.partner_id):
        raise ApiError("not_found", Said("No such offer", "没有此优惠"))
    return offer


async def list_page(
    db: Database,
    caller: Principal,
    page: PageRequest,
    *,
    status: str | None = None,
    partner_id: str | None = None,
    title_contains: str | None = None,
    open_to_category: str | None = None,
) -> Page[Offer]:
    """A partner sees only its own partner's offers, whatever partner_id it asks for."""
    async with connection(db) as conn:
        rows = await offers_db.list_offers(
            conn,
            page,
            status=status,
            partner_id=caller.partner_filter(partner_id),
            title_contains=title_contains,
            open_to_category=open_to_category,
        )
    return page_of(rows, page)


async def change(
    db: Database, caller: Principal | None, offer_id: str, changes: dict[str, Any]
) -> Offer:
    """Apply a PATCH. Status follows draft → active ⇄ paused → ended; once redeemed,
    pricing is frozen, limits may only be loosened and the window only extended."""
    async with connection(db) as conn, conn.transaction():
        # Row lock: edits and redemptions of one offer are judged one after the other,
        # so the "once redeemed" rules see the counters as they are.
        current = await offers_db.get_offer(conn, offer_id, for_update=True)
        if current is None or (
            caller is not None and not caller.can_see_partner(current.partner_id)
        ):
            raise ApiError("not_found", Said("No such offer", "没有此优惠"))
        diff = plan_update(asdict(current), changes)
        if not diff:
            return current
        if "status" in diff and diff["status"][1] == "active":
            partner = await partners_flow.require(conn, current.partner_id)
            check_partner_accepts_offers(partner.status)
        offer = await offers_db.set_fields(
            conn, offer_id, {name: after for name, (_, after) in diff.items()}
        )
        action = "offer.status" if set(diff) == {"status"} else "offer.update"
        audited = {name: [_json_safe(value) for value in pair] for name, pair in diff.items()}
        await audit_db.record(conn, caller, action, "offer", offer_id, audited)
    return offer
