"""Status life cycles: which status moves an entity allows (partners, offers, holders)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from service.domain.errors import ApiError
from service.domain.language import Said


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """`moves` maps each status to the statuses it may go to; staying put is no move."""

    entity: str  # how a refusal names the entity: "A partner"
    moves: Mapping[str, frozenset[str]]

    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(self.moves)

    def check(self, current: str, wanted: str) -> None:
        """Refuse a status change the life cycle does not allow (409 conflict)."""
        if wanted != current and wanted not in self.moves[current]:
            raise ApiError(
                "conflict",
                Said(
                    f"{self.entity} cannot go from {current} to {wanted}",
                    f"{self.entity} 不能从 {current} 变为 {wanted}",
                ),
            )
