"""Reading the audit log (each flow appends its own events in its own transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import asyncpg

from service.db import audit as audit_db
from service.db.audit import AuditEvent
from service.domain.auth import Principal
from service.domain.holders import withhold_personal_data
from service.domain.pagination import Page, PageRequest, page_of
from service.flows.database import Database, connection


async def events(
    db: Database, reader: Principal, page: PageRequest, filters: Mapping[str, Any]
) -> Page[AuditEvent]:
    """One page of events, newest first; `filters` are audit_db.list_events's (entity_type,
    entity_id, actor_id, actor_type, occurred_from, occurred_to)."""
    async with connection(db) as conn:
        rows = await audit_db.list_events(conn, page, **filters)
    # docs/product.md: a bureau_auditor reads every event, never a holder's personal data in one.
    if not reader.reads_personal_data:
        rows = [
            replace(event, changes=withhold_personal_data(event.changes))
            if event.entity_type == "holder"
            else event
            for event in rows
        ]
    return page_of(rows, page)


async def mark(
    conn: asyncpg.Connection, marker: tuple[str, str, str], changes: dict[str, list[Any]]
) -> None:
    """A system event (no actor) that says something was done, with what it made, in the
    caller's transaction (the demo's `demo.load`)."""
    action, entity_type, entity_id = marker
    await audit_db.record(conn, None, action, entity_type, entity_id, changes)


async def marked_value(
    conn: asyncpg.Connection, marker: tuple[str, str, str], name: str
) -> str | None:
    """What the first `mark` of `marker` recorded as the new value of `name`, or None
    when it was never marked."""
    return await audit_db.first_new_value(conn, *marker, name)
