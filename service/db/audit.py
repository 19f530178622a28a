"""SQL for the audit log: appended in the caller's transaction, never updated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.auth import SYSTEM_ACTOR, Principal
from service.domain.ids import new_id
from service.domain.pagination import PageRequest


async def record(
    conn: asyncpg.Connection,
    actor: Principal | None,
    action: str,
    entity_type: str,
    entity_id: str,
    changes: dict[str, Any] | None = None,
) -> None:
    """Append one event; `changes` maps field -> [before, after] and never holds a secret."""
    await conn.execute(
        """
        INSERT INTO audit_events
            (id, actor_id, actor_role, actor, action, entity_type, entity_id, changes)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        new_id("audit"),
        actor.actor if actor else "system",
        actor.actor_role if actor else "system",
        actor.audit_actor if actor else SYSTEM_ACTOR,
        action,
        entity_type,
        entity_id,
        changes or {},
    )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: str
    occurred_at: datetime
    actor_id: str
    actor_role: str
    actor: dict[str, Any]
    action: str
    entity_type: str
    entity_id: str
    changes: dict[str, Any]


async def list_events(
    conn: asyncpg.Connection,
    page: PageRequest,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor_id: str | None = None,
    actor_type: str | None = None,
    occurred_from: Any = None,
    occurred_to: Any = None,
) -> list[AuditEvent]:
    rows = await conn.fetch(
        """
        SELECT id, occurred_at, actor_id, actor_role, actor, action, entity_type, entity_id,
               changes
        FROM audit_events
        WHERE ($1::text IS NULL OR id < $1)
          AND ($2::text IS NULL OR entity_type = $2)
          AND ($3::text IS NULL OR entity_id = $3)
          AND ($4::text IS NULL OR actor_id = $4)
          AND ($5::timestamptz IS NULL OR occurred_at >= $5)
          AND ($6::timestamptz IS NULL OR occurred_at < $6)
          AND ($8::text IS NULL OR actor ->> 'type' = $8)
        ORDER BY id DESC
        LIMIT $7
        """,
        page.after_id,
        entity_type,
        entity_id,
        actor_id,
        occurred_from,
        occurred_to,
        page.limit + 1,
        actor_type,
    )
    return [AuditEvent(**row) for row in rows]


async def first_new_value(
    conn: asyncpg.Connection, action: str, entity_type: str, entity_id: str, name: str
) -> str | None:
    """The new value of `name` in the first event of `action` on this entity (as text),
    or None when there is no such event."""
    value: str | None = await conn.fetchval(
        """
        SELECT changes -> $4::text ->> 1 FROM audit_events
        WHERE action = $1 AND entity_type = $2 AND entity_id = $3
        ORDER BY id LIMIT 1
        """,
        action,
        entity_type,
        entity_id,
        name,
    )
    return value
