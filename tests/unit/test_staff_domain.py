"""Staff rules without a database: TOTP steps, passwords, roles, the last bureau_admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from service.domain import totp
from service.domain.auth import Role, StaffPrincipal, StaffRole, staff_roles_admitted
from service.domain.errors import ApiError
from service.domain.staff import (
    StaffSummary,
    TotpPolicy,
    check_keeps_a_bureau_admin,
    check_password,
    csrf_matches,
    csrf_token_for,
    totp_required,
)

NOW = datetime(2026, 12, 1, 12, 0, 10, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _code(at: datetime) -> str:
    return pyotp.TOTP(SECRET).at(at)


@pytest.mark.parametrize("offset", [-30, 0, 30])
def test_a_code_of_the_previous_current_or_next_step_is_accepted(offset: int) -> None:
    at = NOW + timedelta(seconds=offset)
    assert totp.accepted_step(SECRET, _code(at), NOW, None) == totp.step_of(at)


@pytest.mark.parametrize("offset", [-90, -60, 60, 90])
def test_a_code_two_steps_away_is_refused(offset: int) -> None:
    assert totp.accepted_step(SECRET, _code(NOW + timedelta(seconds=offset)), NOW, None) is None


def test_a_code_whose_step_was_used_is_refused() -> None:
    step = totp.accepted_step(SECRET, _code(NOW), NOW, None)
    assert step is not None
    assert totp.accepted_step(SECRET, _code(NOW), NOW, step) is None
    assert totp.accepted_step(SECRET, _code(NOW - timedelta(seconds=30)), NOW, step) is None
    assert totp.accepted_step(SECRET, _code(NOW + timedelta(seconds=30)), NOW, step) == step + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 456"])
def test_a_malformed_code_is_refused(code: str) -> None:
    assert totp.accepted_step(SECRET, code, NOW, None) is None


@pytest.mark.parametrize(
    "password", ["elevenchars", "password123456", "123456789012", "aaaaaaaaaaaaaaaa"]
)
def test_short_and_common_passwords_are_refused(password: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_password(password)
    assert refused.value.code == "validation_error"


def test_a_password_made_of_the_email_is_refused() -> None:
    with pytest.raises(ApiError):
        check_password("zhang.wei.bureau", email="zhang.wei.bureau@bureau.example")


def test_a_long_uncommon_password_is_accepted() -> None:
    check_password("amber-walrus-quietly-juggles-47")


def test_the_csrf_token_belongs_to_its_session_only() -> None:
    token = csrf_token_for("yss_one")
    assert csrf_matches("yss_one", token)
    assert not csrf_matches("yss_two", token)
    assert not csrf_matches("yss_one", None) and not csrf_matches("yss_one", "")


def _staff(role: StaffRole) -> StaffPrincipal:
    return StaffPrincipal.of(
        staff_id="stf_1",
        staff_role=role,
        partner_id="ptn_1" if role is StaffRole.PARTNER_MANAGER else None,
        display_name="x",
        email="x@y",
        session_id="sts_1",
    )


def test_roles_map_onto_the_key_roles() -> None:
    admin_only = [Role.ADMIN]
    assert _staff(StaffRole.BUREAU_ADMIN).may_call(admin_only, read_only=False, personal_data=True)
    auditor = _staff(StaffRole.BUREAU_AUDITOR)
    assert auditor.may_call(admin_only, read_only=True, personal_data=False)
    assert not auditor.may_call(admin_only, read_only=False, personal_data=False)
    assert not auditor.may_call(admin_only, read_only=True, personal_data=True)
    manager = _staff(StaffRole.PARTNER_MANAGER)
    assert manager.may_call([Role.ADMIN, Role.PARTNER], read_only=False, personal_data=False)
    assert not manager.may_call(admin_only, read_only=True, personal_data=False)
    assert not manager.may_call([Role.SCANNER], read_only=False, personal_data=False)
    assert manager.role is Role.PARTNER and manager.partner_id == "ptn_1"
    assert staff_roles_admitted(admin_only, read_only=True, personal_data=True) == [
        StaffRole.BUREAU_ADMIN
    ]


def test_the_audit_actor_names_the_person() -> None:
    assert _staff(StaffRole.BUREAU_ADMIN).audit_actor == {
        "type": "staff",
        "id": "stf_1",
        "display_name": "x",
    }


@pytest.mark.parametrize(
    ("after", "others", "refused"),
    [
        (StaffSummary(StaffRole.BUREAU_AUDITOR, "active"), 0, True),
        (StaffSummary(StaffRole.BUREAU_ADMIN, "disabled"), 0, True),
        (StaffSummary(StaffRole.BUREAU_ADMIN, "active"), 0, False),
        (StaffSummary(StaffRole.BUREAU_AUDITOR, "active"), 1, False),
    ],
)
def test_the_last_active_bureau_admin_stays(after, others: int, refused: bool) -> None:
    before = StaffSummary(StaffRole.BUREAU_ADMIN, "active")
    if refused:
        with pytest.raises(ApiError) as error:
            check_keeps_a_bureau_admin(before, after, others)
        assert error.value.code == "conflict"
    else:
        check_keeps_a_bureau_admin(before, after, others)


def test_the_totp_policy_names_whom_it_binds() -> None:
    assert totp_required(TotpPolicy.REQUIRED, StaffRole.PARTNER_MANAGER)
    assert totp_required(TotpPolicy.REQUIRED_FOR_BUREAU, StaffRole.BUREAU_AUDITOR)
    assert not totp_required(TotpPolicy.REQUIRED_FOR_BUREAU, StaffRole.PARTNER_MANAGER)
    assert not totp_required(TotpPolicy.OPTIONAL, StaffRole.BUREAU_ADMIN)
