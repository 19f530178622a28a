"""Reading the audit log (each flow appends its own events in its own transaction)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from service.db import audit as audit_db
from service.db.audit import AuditEvent
from service.domain.pagination import Page, PageRequest, page_of


async def events(
    conn: asyncpg.Connection,
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
    return page_of(rows, page)
