"""Who is calling, and what each kind of caller may do.

One type per kind of caller: `Principal` for API keys and holder sessions (its `role`
says which), `StaffPrincipal` for a person signed in with a staff session. A staff
member acts *as* a key role where docs/staff.md says so (a bureau_admin as an admin key, a
partner_manager as its partner's key, a bureau_auditor as an admin reading), and
`may_call` is the one place that mapping is written.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    ADMIN = "admin"
    PARTNER = "partner"
    SCANNER = "scanner"
    HOLDER = "holder"


class StaffRole(StrEnum):
    BUREAU_ADMIN = "bureau_admin"
    BUREAU_AUDITOR = "bureau_auditor"
    PARTNER_MANAGER = "partner_manager"


#: Roles an API key can have (holders sign in with card + PIN instead).
KEY_ROLES = (Role.ADMIN, Role.PARTNER, Role.SCANNER)

#: Every staff role, for routes any signed-in person may call (their own profile).
STAFF_ROLES = tuple(StaffRole)

#: The key role each staff role acts as inside handlers (ownership checks, listings):
#: bureau staff see every partner, a partner_manager only its own.
ACTS_AS = {
    StaffRole.BUREAU_ADMIN: Role.ADMIN,
    StaffRole.BUREAU_AUDITOR: Role.ADMIN,
    StaffRole.PARTNER_MANAGER: Role.PARTNER,
}

AnyRole = Role | StaffRole


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request: an API key or a holder session."""

    role: Role
    key_id: str | None = None
    partner_id: str | None = None
    holder_id: str | None = None
    label: str | None = None  # an API key's label, for the audit log

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def partner_filter(self, asked: str | None) -> str | None:
        """Rule 5, for lists and reports: the partner a list is confined to. Bureau
        callers see the partner they ask for (None: every partner); any other caller
        only its own, and asking for another partner's gives an id no partner has, so an
        empty list, which says nothing of whether that partner exists."""
        if self.is_admin:
            return asked
        if asked is not None and asked != self.partner_id:
            return ""
        return self.partner_id or ""

    def can_see_partner(self, partner_id: str) -> bool:
        """Rule 5, for one resource: admins see every partner; partner and scanner keys
        only their own."""
        return self.is_admin or (self.partner_id is not None and self.partner_id == partner_id)

    def may_call(
        self, allowed: Collection[AnyRole], *, read_only: bool, personal_data: bool
    ) -> bool:
        """Whether an operation declared for `allowed` roles admits this caller."""
        return self.role in allowed

    @property
    def reads_personal_data(self) -> bool:
        """Whether this caller may read holders' personal data wherever it appears
        (an audit event of a holder included): by the rule that admits a caller to the
        holder routes, so a bureau_auditor never does."""
        return self.may_call((Role.ADMIN,), read_only=True, personal_data=True)

    @property
    def actor(self) -> str:
        """How the audit log names this caller (never a secret)."""
        return self.key_id or self.holder_id or "system"

    @property
    def actor_role(self) -> str:
        return str(self.role)

    @property
    def audit_actor(self) -> dict[str, Any]:
        """The actor of an audit event (docs/staff.md)."""
        if self.key_id is not None:
            return {"type": "key", "id": self.key_id, "label": self.label}
        if self.holder_id is not None:
            return {"type": "holder", "id": self.holder_id}
        return SYSTEM_ACTOR


SYSTEM_ACTOR: dict[str, Any] = {"type": "system"}


# One type per kind of caller, with the ids that kind always has: a handler of a route
# that admits only scanners gets a ScannerKey (api.http.caller_as), whose partner_id
# is a str, and never checks for None.


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminKey(Principal):
    key_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PartnerKey(Principal):
    key_id: str
    partner_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannerKey(Principal):
    key_id: str
    partner_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HolderSession(Principal):
    holder_id: str


def key_caller(role: Role, key_id: str, partner_id: str | None, label: str) -> Principal:
    """The caller an API key names, typed by its role."""
    if role is Role.ADMIN:
        return AdminKey(role=role, key_id=key_id, label=label)
    if partner_id is None:
        raise ValueError(f"a {role} key without a partner")  # a CHECK on api_keys forbids it
    kind = PartnerKey if role is Role.PARTNER else ScannerKey
    return kind(role=role, key_id=key_id, partner_id=partner_id, label=label)


def holder_caller(holder_id: str) -> HolderSession:
    return HolderSession(role=Role.HOLDER, holder_id=holder_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffPrincipal(Principal):
    """A person signed in with a staff session (cookie `youdai_staff`)."""

    staff_id: str
    staff_role: StaffRole
    display_name: str
    email: str
    session_id: str
    #: YOUDAI_STAFF_TOTP requires a second factor this account has not enrolled yet:
    #: it may do nothing but enrol (and see itself, and sign out).
    must_enrol_totp: bool = False

    @classmethod
    def of(
        cls,
        *,
        staff_id: str,
        staff_role: StaffRole,
        partner_id: str | None,
        display_name: str,
        email: str,
        session_id: str,
        must_enrol_totp: bool = False,
    ) -> StaffPrincipal:
        return cls(
            role=ACTS_AS[staff_role],
            partner_id=partner_id,
            staff_id=staff_id,
            staff_role=staff_role,
            display_name=display_name,
            email=email,
            session_id=session_id,
            must_enrol_totp=must_enrol_totp,
        )

    def may_call(
        self, allowed: Collection[AnyRole], *, read_only: bool, personal_data: bool
    ) -> bool:
        """docs/api.md: a bureau_admin may what an admin key may; a bureau_auditor the GET
        endpoints of an admin except holders' personal data; a partner_manager what its
        partner's key may. Routes may also name staff roles themselves."""
        if self.staff_role in allowed:
            return True
        if self.staff_role is StaffRole.BUREAU_ADMIN:
            return Role.ADMIN in allowed
        if self.staff_role is StaffRole.BUREAU_AUDITOR:
            return Role.ADMIN in allowed and read_only and not personal_data
        return Role.PARTNER in allowed

    @property
    def actor(self) -> str:
        return self.staff_id

    @property
    def actor_role(self) -> str:
        return str(self.staff_role)

    @property
    def audit_actor(self) -> dict[str, Any]:
        return {"type": "staff", "id": self.staff_id, "display_name": self.display_name}


def staff_roles_admitted(
    allowed: Collection[AnyRole], *, read_only: bool, personal_data: bool
) -> list[StaffRole]:
    """The staff roles an operation admits (for its documentation), by the same rule
    as `StaffPrincipal.may_call`."""
    return [
        role
        for role in StaffRole
        if StaffPrincipal.of(
            staff_id="",
            staff_role=role,
            partner_id=None,
            display_name="",
            email="",
            session_id="",
        ).may_call(allowed, read_only=read_only, personal_data=personal_data)
    ]
