"""A holder import job (docs/api.md) as its callers see it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: What GET /v1/holder-imports/{id} says of a job whose process stopped before the end.
CUT_SHORT = (
    "The import was cut short (the server running it stopped) before it finished; "
    "nothing was written. Send the file again."
)
#: What it says of a job stopped on purpose (a server shutting down, Ctrl-C in the CLI).
STOPPED = (
    "The import was stopped (its server or command shut down) before it finished; "
    "nothing was written. Send the file again."
)


@dataclass(frozen=True, slots=True)
class HolderImport:
    id: str
    status: str  # running | completed | failed
    rows: int
    done: int
    created: int
    updated: int
    detail: str | None
    created_at: datetime
    finished_at: datetime | None
