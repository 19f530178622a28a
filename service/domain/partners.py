"""Partner rules: categories and the status life cycle."""

from __future__ import annotations

from service.domain.errors import ApiError

CATEGORIES = ("postal", "culture_tourism", "catering", "retail", "health", "transport", "other")
STATUSES = ("pending", "active", "suspended", "terminated")

#: pending → active ⇄ suspended → terminated; nothing comes back from terminated.
_TRANSITIONS = {
    "pending": {"active"},
    "active": {"suspended"},
    "suspended": {"active", "terminated"},
    "terminated": set(),
}


def check_transition(current: str, wanted: str) -> None:
    """Refuse any status change the life cycle does not allow (409 conflict)."""
    if wanted != current and wanted not in _TRANSITIONS[current]:
        raise ApiError("conflict", f"A partner cannot go from {current} to {wanted}")
