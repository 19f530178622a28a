"""Enterprises that ask to join (docs/api.md): anyone applies, the bureau decides once.

A submission is judged under one advisory lock, so two at once cannot both pass the
duplicate check, and the applications counted per client address are exact in every
process. An approval enrols the partner from the application, activates it and invites
its partner_manager, all in one transaction: either all of it happens or none.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.db import applications as applications_db
from service.db import audit as audit_db
from service.db.partners import Partner
from service.domain import applications as rules
from service.domain.applications import Application
from service.domain.auth import Principal, StaffRole
from service.domain.errors import ApiError
from service.domain.ids import time_ordered_id
from service.domain.language import Said
from service.domain.pagination import Page, PageRequest, page_of
from service.domain.partners import check_region
from service.flows import partners as partners_flow
from service.flows import staff as staff_flow
from service.flows.staff import Invitation

NOT_FOUND = Said("No such application", "没有此申请")
DUPLICATE = Said(
    "A partner or an open application has this name or contact phone already",
    "已有同名或同一联系电话的合作商户或待审申请",
)
DECIDED = Said("The application has been decided already", "此申请已有决定")


@dataclass(frozen=True, slots=True)
class Submitted:
    application: Application
    status_token: str


@dataclass(frozen=True, slots=True)
class Approval:
    application: Application
    partner: Partner
    invitation: Invitation


def _too_many(oldest: datetime, now: datetime) -> ApiError:
    seconds = rules.retry_after_seconds(oldest, now)
    minutes = -(-seconds // 60)
    return ApiError(
        "too_many_attempts",
        Said(
            f"Too many applications from this address: try again in {minutes} minute(s)",
            f"此地址提交的申请过多：请在 {minutes} 分钟后再试",
        ),
        headers={"Retry-After": str(seconds)},
    )


async def submit(
    pool: asyncpg.Pool,
    fields: dict[str, Any],
    *,
    address: str,
    now: datetime,
    regions: Collection[str] = (),
) -> Submitted:
    """A new application (status submitted) and its status token; too_many_attempts when
    `address` has sent ADDRESS_LIMIT within the window, or conflict for a duplicate
    (which counts against the address too)."""
    check_region(fields.get("region", ""), regions)
    name_key, phone_key = rules.name_key(fields["name"]), rules.phone_key(fields["contact_phone"])
    token = rules.new_status_token()
    application: Application | None = None
    async with pool.acquire() as conn, conn.transaction():
        await applications_db.lock_submissions(conn)
        oldest = await applications_db.oldest_attempt_if_over(
            conn, address, now, rules.ADDRESS_WINDOW, rules.ADDRESS_LIMIT
        )
        if oldest is not None:
            raise _too_many(oldest, now)
        await applications_db.record_attempt(conn, address, now, rules.ADDRESS_WINDOW)
        if await applications_db.duplicate_of(conn, name_key, phone_key) is None:
            application = await applications_db.insert(
                conn,
                rules.ID_PREFIX + time_ordered_id(),
                fields,
                name_key=name_key,
                phone_key=phone_key,
                token_hash=rules.hash_status_token(token),
                now=now,
            )
    # Refused after the commit: the attempt counts, so duplicates cannot be probed freely.
    if application is None:
        raise ApiError("conflict", DUPLICATE)
    return Submitted(application, token)


async def by_status_token(pool: asyncpg.Pool, token: str) -> Application:
    """The application a status link is for, or not_found."""
    async with pool.acquire() as conn:
        application = await applications_db.by_status_token(conn, rules.hash_status_token(token))
    if application is None:
        raise ApiError("not_found", Said("The status link is unknown", "状态链接无效"))
    return application


async def get(pool: asyncpg.Pool, application_id: str) -> Application:
    async with pool.acquire() as conn:
        application = await applications_db.get(conn, application_id)
    if application is None:
        raise ApiError("not_found", NOT_FOUND)
    return application


async def list_page(
    pool: asyncpg.Pool, page: PageRequest, *, status: str | None = None
) -> Page[Application]:
    async with pool.acquire() as conn:
        rows = await applications_db.list_applications(conn, page, status=status)
    return page_of(rows, page)


async def approve(
    pool: asyncpg.Pool, caller: Principal, application_id: str, now: datetime
) -> Approval:
    """Enrol the partner from the application, activate it and invite its
    partner_manager at the contact email; conflict when already decided (or when a
    staff account has that email)."""
    async with pool.acquire() as conn, conn.transaction():
        # Row lock: two decisions at once are judged one after the other.
        current = await applications_db.get(conn, application_id, for_update=True)
        if current is None:
            raise ApiError("not_found", NOT_FOUND)
        if current.status != "submitted":
            raise ApiError("conflict", DECIDED)
        # The region was checked against the bureau's list when the application came in.
        partner = await partners_flow.enrol(
            conn,
            caller,
            {
                "name": current.name,
                "category": current.category,
                "contact_name": current.contact_name,
                "contact_phone": current.contact_phone,
                "address": current.address,
                "region": current.region,
                "public_phone": current.public_phone,
                "opening_hours": current.opening_hours,
            },
        )
        partner = await partners_flow.change(conn, caller, partner.id, {"status": "active"})
        invitation = await staff_flow.invite(
            conn,
            caller,
            email=current.contact_email,
            role=StaffRole.PARTNER_MANAGER,
            display_name=current.contact_name,
            partner_id=partner.id,
        )
        application = await applications_db.decide(conn, application_id, now, partner_id=partner.id)
        assert application is not None  # the row is locked and was submitted
        await audit_db.record(
            conn,
            caller,
            "partner_application.approve",
            "partner_application",
            application_id,
            {"status": ["submitted", "approved"], "partner_id": [None, partner.id]},
        )
    return Approval(application, partner, invitation)


async def reject(
    pool: asyncpg.Pool, caller: Principal, application_id: str, reason: str, now: datetime
) -> Application:
    """Reject an open application with the reason its applicant will read."""
    async with pool.acquire() as conn, conn.transaction():
        application = await applications_db.decide(
            conn, application_id, now, rejection_reason=reason
        )
        if application is None:
            if await applications_db.get(conn, application_id) is None:
                raise ApiError("not_found", NOT_FOUND)
            raise ApiError("conflict", DECIDED)
        await audit_db.record(
            conn,
            caller,
            "partner_application.reject",
            "partner_application",
            application_id,
            {"status": ["submitted", "rejected"], "rejection_reason": [None, reason]},
        )
    return application
