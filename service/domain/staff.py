"""Staff account rules (docs/product.md "Staff account", 7): passwords, sessions, the second
factor and the last bureau_admin. Pure: no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from zxcvbn import zxcvbn

from service.domain.auth import Principal, StaffPrincipal, StaffRole
from service.domain.errors import ApiError, validation_error
from service.domain.language import Said

#: An invitation's setup link works once, for this long.
INVITATION_TTL = timedelta(hours=72)

#: A session ends after this long without a request, and after SESSION_MAX_AGE anyway.
SESSION_IDLE = timedelta(minutes=30)
SESSION_MAX_AGE = timedelta(hours=12)
#: last_seen_at is written at most this often (a busy console does not write on every call).
SESSION_TOUCH_RESOLUTION = timedelta(seconds=30)

#: Five failed sign-ins within the window lock the account for LOCK_DURATION.
MAX_FAILED_SIGNINS = 5
ATTEMPT_WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)

COOKIE_NAME = "youdai_staff"
CSRF_HEADER = "X-CSRF-Token"

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
#: zxcvbn scores 0-4; below 3 a password is among the commonly used or easily guessed
#: (its packaged lists: common passwords, names, words, keyboard patterns, repeats).
MIN_PASSWORD_SCORE = 3
#: zxcvbn's own limit on what it judges.
ZXCVBN_MAX_LENGTH = 72

SETUP_PREFIX = "yst_"
SESSION_PREFIX = "yss_"
SECRET_BYTES = 32


class TotpPolicy(StrEnum):
    OPTIONAL = "optional"
    REQUIRED_FOR_BUREAU = "required_for_bureau"
    REQUIRED = "required"


def totp_required(policy: TotpPolicy, role: StaffRole) -> bool:
    """Whether YOUDAI_STAFF_TOTP demands a second factor of an account with `role`."""
    if policy is TotpPolicy.REQUIRED:
        return True
    if policy is TotpPolicy.REQUIRED_FOR_BUREAU:
        return role in (StaffRole.BUREAU_ADMIN, StaffRole.BUREAU_AUDITOR)
    return False


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively (and without surrounding spaces)."""
    return email.strip().lower()


#: A name shorter than this (after `_letters_and_digits`) is not looked for in passwords:
#: "li" or "wu" would refuse passwords for no gain.
MIN_NAME_IN_PASSWORD = 3

PASSWORD_TOO_SHORT = Said(
    f"must be at least {MIN_PASSWORD_LENGTH} characters long",
    f"至少须有 {MIN_PASSWORD_LENGTH} 个字符",
)
PASSWORD_TOO_LONG = Said(
    f"must be at most {MAX_PASSWORD_LENGTH} characters", f"最多 {MAX_PASSWORD_LENGTH} 个字符"
)
PASSWORD_TOO_COMMON = Said(
    "is too common or too easy to guess; use a longer phrase of unrelated words",
    "过于常见或容易猜到：请使用由几个无关词语组成的较长短语",
)
PASSWORD_HOLDS_NAME = Said(
    "must not contain the account's email name or display name; "
    "use a longer phrase of unrelated words",
    "不得包含账户的邮箱用户名或显示名称：请使用由几个无关词语组成的较长短语",
)


def _letters_and_digits(text: str) -> str:
    """`text` case-folded, without spaces, dots, dashes or other separators."""
    return "".join(char for char in text.casefold() if char.isalnum())


def holds_name(password: str, *, email: str = "", display_name: str = "") -> bool:
    """Whether the password contains the email's local part or the display name, in any
    case and whatever separators either is written with."""
    folded = _letters_and_digits(password)
    names = (_letters_and_digits(email.partition("@")[0]), _letters_and_digits(display_name))
    return any(len(name) >= MIN_NAME_IN_PASSWORD and name in folded for name in names)


def check_password(password: str, *, email: str = "", display_name: str = "") -> None:
    """Refuse a password shorter than 12 characters, a commonly used one, or one holding
    the account's email name or display name (validation_error on `password`)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise validation_error("password", PASSWORD_TOO_SHORT)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise validation_error("password", PASSWORD_TOO_LONG)
    if holds_name(password, email=email, display_name=display_name):
        raise validation_error("password", PASSWORD_HOLDS_NAME)
    hints = [part for part in (email, email.partition("@")[0], display_name) if part]
    # zxcvbn judges at most its first 72 characters (it raises on longer ones, and its
    # time grows fast with the length): more characters can only add to the strength.
    if zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=hints)["score"] < MIN_PASSWORD_SCORE:
        raise validation_error("password", PASSWORD_TOO_COMMON)


def generate_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> bytes:
    """Setup tokens and session secrets carry 256 random bits: SHA-256 is enough."""
    return hashlib.sha256(secret.encode()).digest()


def csrf_token_for(session_secret: str) -> str:
    """The session's CSRF token, derived from its secret: nothing more is stored, and
    a page reloaded in the same session can ask for it again (GET /v1/staff/me)."""
    digest = hmac.new(session_secret.encode(), b"youdai staff csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_matches(session_secret: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(
        csrf_token_for(session_secret).encode(), given.encode("utf-8", "replace")
    )


@dataclass(frozen=True, slots=True)
class StaffSummary:
    """What the last-bureau_admin rule needs to know about a change."""

    role: StaffRole
    status: str


def check_keeps_a_bureau_admin(
    before: StaffSummary, after: StaffSummary, other_active_admins: int
) -> None:
    """The last active bureau_admin cannot be disabled or demoted (409 conflict)."""
    was_admin = before.role is StaffRole.BUREAU_ADMIN and before.status == "active"
    stays_admin = after.role is StaffRole.BUREAU_ADMIN and after.status == "active"
    if was_admin and not stays_admin and other_active_admins == 0:
        raise ApiError(
            "conflict",
            Said(
                "This is the last active bureau_admin: it cannot be disabled or demoted",
                "这是最后一个有效的 bureau_admin：不能停用或降级",
            ),
        )


def check_partner_for_role(role: StaffRole, partner_id: str | None) -> None:
    """A partner_manager names its partner; bureau staff name none."""
    if role is StaffRole.PARTNER_MANAGER and partner_id is None:
        raise validation_error(
            "partner_id", Said("is required for a partner_manager", "partner_manager 必须填写")
        )
    if role is not StaffRole.PARTNER_MANAGER and partner_id is not None:
        raise validation_error(
            "partner_id", Said("is only for a partner_manager", "仅用于 partner_manager")
        )


def session_expiry(created_at: datetime) -> datetime:
    return created_at + SESSION_MAX_AGE


def check_key_access(caller: Principal, partner_id: str | None, key_role: str | None) -> None:
    """A partner_manager issues, lists and revokes only its own partner's scanner keys
    (Rule 5: another partner's are not even found); every other caller the key routes
    admit is an admin."""
    if not isinstance(caller, StaffPrincipal) or caller.staff_role is not StaffRole.PARTNER_MANAGER:
        return
    if partner_id is None or partner_id != caller.partner_id:
        raise ApiError("not_found", Said("No such partner or key", "没有此合作商户或密钥"))
    if key_role is not None and key_role != "scanner":
        raise ApiError(
            "forbidden",
            Said(
                "A partner_manager manages scanner keys only", "partner_manager 只能管理收银台密钥"
            ),
        )


# A staff account as the service shows it (db/staff.py reads it) -----------------------


@dataclass(frozen=True, slots=True)
class StaffAccount:
    id: str
    email: str
    display_name: str
    role: str
    partner_id: str | None
    status: str
    totp_enabled: bool
    created_at: datetime
    updated_at: datetime
