"""SQL shared by the aggregates' modules."""

from __future__ import annotations

from typing import Any

import asyncpg


async def update_columns(
    conn: asyncpg.Connection,
    table: str,
    row_id: str,
    values: dict[str, Any],
    returning: str,
    *,
    also: str = "",
) -> asyncpg.Record:
    """Set `values` (column -> value; the names are the module's own constants, never
    input), the module's own assignments `also` if any, and updated_at on the row `row_id`
    of `table`; the row as `returning` reads it."""
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(values, start=2))
    if also:
        assignments += f", {also}"
    return await conn.fetchrow(
        f"UPDATE {table} SET {assignments}, updated_at = now() WHERE id = $1 RETURNING {returning}",
        row_id,
        *values.values(),
    )
