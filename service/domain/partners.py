"""Partner rules: categories, the status life cycle, the regions of the public profile."""

from __future__ import annotations

from collections.abc import Collection

from service.domain.errors import validation_error
from service.domain.language import Said
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


def check_region(region: str, regions: Collection[str]) -> None:
    """A partner's region is one of the bureau's (YOUDAI_REGIONS) when it has a list, any
    text otherwise; empty means not said yet."""
    if regions and region and region not in regions:
        listed = ", ".join(regions)
        raise validation_error(
            "region",
            Said(
                f"must be one of the bureau's regions: {listed}",
                f"必须是本局所列地区之一：{listed}",
            ),
        )
