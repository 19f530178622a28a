"""Partner rules: categories and the status life cycle."""

from __future__ import annotations

from service.domain.lifecycle import Lifecycle

CATEGORIES = ("postal", "culture_tourism", "catering", "retail", "health", "transport", "other")
#: pending → active ⇄ suspended → terminated; nothing comes back from terminated.
LIFECYCLE = Lifecycle(
    "A partner",
    {
        "pending": frozenset({"active"}),
        "active": frozenset({"suspended"}),
        "suspended": frozenset({"active", "terminated"}),
        "terminated": frozenset(),
    },
)
STATUSES = LIFECYCLE.statuses
check_transition = LIFECYCLE.check
