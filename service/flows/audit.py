"""Reading the audit log (each flow appends its own events in its own transaction)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import asyncpg

from service.db import audit as audit_db
from service.db.audit import AuditEvent
from service.domain.auth import Principal
from service.domain.holders import withhold_personal_data
from service.domain.pagination import Page, PageRequest, page_of


async def events(
    conn: asyncpg.Connection,
    reader: Principal,
    page: PageRequest,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor_id: str | None = None,
    actor_type: str | None = None,
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
) -> Page[AuditEvent]:
    rows = await audit_db.list_events(
        conn,
        page,
        entity_type=entity_type,
        entity_id=entity_id,
        actor_id=actor_id,
        actor_type=actor_type,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
    )
    # docs/product.md: a bureau_auditor reads every event, never a holder's personal data in one.
    if not reader.reads_personal_data:
        rows = [
            replace(event, changes=withhold_personal_data(event.changes))
            if event.entity_type == "holder"
            else event
            for event in rows
        ]
    return page_of(rows, page)
