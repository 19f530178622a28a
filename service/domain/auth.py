"""Who is calling, and what each kind of caller may do."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    PARTNER = "partner"
    SCANNER = "scanner"
    HOLDER = "holder"


#: Roles an API key can have (holders sign in with card + PIN instead).
KEY_ROLES = (Role.ADMIN, Role.PARTNER, Role.SCANNER)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    role: Role
    key_id: str | None = None
    partner_id: str | None = None
    holder_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can_see_partner(self, partner_id: str) -> bool:
        """Rule 5: admins see every partner; partner and scanner keys only their own."""
        return self.is_admin or (self.partner_id is not None and self.partner_id == partner_id)

    @property
    def actor(self) -> str:
        """How the audit log names this caller (never a secret)."""
        return self.key_id or self.holder_id or "system"
