"""Who may see and manage what (Rule 5, docs/api.md): typed callers, partner filters, staff
and key access. Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain.auth import (
    AdminKey,
    HolderSession,
    PartnerKey,
    Principal,
    Role,
    ScannerKey,
    StaffPrincipal,
    StaffRole,
    holder_caller,
    key_caller,
)
from service.domain.errors import ApiError
from service.domain.staff import (
    SESSION_MAX_AGE,
    check_key_access,
    check_partner_for_role,
    session_expiry,
)


def staff(role: StaffRole, partner_id: str | None = None) -> StaffPrincipal:
    return StaffPrincipal.of(
        staff_id="stf_1",
        staff_role=role,
        partner_id=partner_id,
        display_name="Li",
        email="li@example.cn",
        session_id="sts_1",
    )


def test_admin_key_caller_is_an_admin_key_with_its_id_and_label() -> None:
    caller = key_caller(Role.ADMIN, "key_a", None, "ops")
    assert type(caller) is AdminKey
    assert (caller.role, caller.key_id, caller.partner_id, caller.label) == (
        Role.ADMIN,
        "key_a",
        None,
        "ops",
    )
    assert caller.is_admin


@pytest.mark.parametrize(("role", "kind"), [(Role.PARTNER, PartnerKey), (Role.SCANNER, ScannerKey)])
def test_partner_and_scanner_key_callers_carry_their_partner(role: Role, kind: type) -> None:
    caller = key_caller(role, "key_b", "ptn_1", "till 3")
    assert type(caller) is kind
    assert (caller.role, caller.key_id, caller.partner_id, caller.label) == (
        role,
        "key_b",
        "ptn_1",
        "till 3",
    )
    assert not caller.is_admin


@pytest.mark.parametrize("role", [Role.PARTNER, Role.SCANNER])
def test_a_partner_or_scanner_key_without_a_partner_is_refused(role: Role) -> None:
    with pytest.raises(ValueError, match="without a partner"):
        key_caller(role, "key_c", None, "x")


def test_holder_caller_is_a_holder_session() -> None:
    caller = holder_caller("hld_1")
    assert type(caller) is HolderSession
    assert (caller.role, caller.holder_id, caller.partner_id) == (Role.HOLDER, "hld_1", None)


def test_admin_sees_every_partner_and_filters_on_what_it_asks() -> None:
    admin = key_caller(Role.ADMIN, "key_a", None, "ops")
    assert admin.can_see_partner("ptn_1")
    assert admin.partner_filter("ptn_2") == "ptn_2"
    assert admin.partner_filter(None) is None


def test_partner_key_sees_only_its_own_partner() -> None:
    caller = key_caller(Role.PARTNER, "key_b", "ptn_1", "shop")
    assert caller.can_see_partner("ptn_1")
    assert not caller.can_see_partner("ptn_2")
    assert caller.partner_filter(None) == "ptn_1"
    assert caller.partner_filter("ptn_1") == "ptn_1"
    assert caller.partner_filter("ptn_2") == ""


def test_a_caller_with_no_partner_sees_no_partner_and_lists_nothing() -> None:
    holder = holder_caller("hld_1")
    assert not holder.can_see_partner("ptn_1")
    assert holder.partner_filter(None) == ""
    assert holder.partner_filter("ptn_1") == ""


def test_key_callers_are_admitted_by_their_role_only() -> None:
    scanner = key_caller(Role.SCANNER, "key_s", "ptn_1", "till")
    assert scanner.may_call([Role.SCANNER], read_only=False, personal_data=False)
    assert not scanner.may_call([Role.ADMIN, Role.PARTNER], read_only=True, personal_data=False)


def test_partner_manager_needs_a_partner_and_bureau_staff_name_none() -> None:
    check_partner_for_role(StaffRole.PARTNER_MANAGER, "ptn_1")
    check_partner_for_role(StaffRole.BUREAU_ADMIN, None)
    check_partner_for_role(StaffRole.BUREAU_AUDITOR, None)
    with pytest.raises(ApiError) as missing:
        check_partner_for_role(StaffRole.PARTNER_MANAGER, None)
    assert missing.value.code == "validation_error"
    assert [e.field for e in missing.value.errors] == ["partner_id"]
    for role in (StaffRole.BUREAU_ADMIN, StaffRole.BUREAU_AUDITOR):
        with pytest.raises(ApiError) as extra:
            check_partner_for_role(role, "ptn_1")
        assert extra.value.code == "validation_error"
        assert [e.field for e in extra.value.errors] == ["partner_id"]


def test_a_staff_session_ends_twelve_hours_after_it_began() -> None:
    began = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    assert (
        session_expiry(began) == began + SESSION_MAX_AGE == datetime(2025, 3, 1, 20, 0, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    "caller",
    [
        AdminKey(role=Role.ADMIN, key_id="key_a"),
        staff(StaffRole.BUREAU_ADMIN),
        staff(StaffRole.BUREAU_AUDITOR),
    ],
)
def test_admins_manage_any_partners_keys_of_any_role(caller: Principal) -> None:
    check_key_access(caller, "ptn_1", "partner")
    check_key_access(caller, None, "admin")


def test_partner_manager_manages_its_own_partners_scanner_keys() -> None:
    manager = staff(StaffRole.PARTNER_MANAGER, "ptn_1")
    check_key_access(manager, "ptn_1", "scanner")
    check_key_access(manager, "ptn_1", None)


@pytest.mark.parametrize("partner_id", ["ptn_2", None])
def test_partner_manager_does_not_find_another_partners_keys(partner_id: str | None) -> None:
    manager = staff(StaffRole.PARTNER_MANAGER, "ptn_1")
    with pytest.raises(ApiError) as refused:
        check_key_access(manager, partner_id, "scanner")
    assert refused.value.code == "not_found"


@pytest.mark.parametrize("key_role", ["partner", "admin"])
def test_partner_manager_may_not_manage_other_than_scanner_keys(key_role: str) -> None:
    manager = staff(StaffRole.PARTNER_MANAGER, "ptn_1")
    with pytest.raises(ApiError) as refused:
        check_key_access(manager, "ptn_1", key_role)
    assert refused.value.code == "forbidden"
