"""Staff accounts: invitations, password setup, sign-in, sessions, the second factor
and their management (docs/staff.md). Each function is one use case: it opens the
transaction, applies the rules of service.domain.staff, writes the audit event."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.clock import Clock, system_clock
from service.db import audit as audit_db
from service.db import staff as staff_db
from service.db.staff import SignInFacts
from service.domain import staff as rules
from service.domain import totp
from service.domain.auth import Principal, StaffPrincipal, StaffRole
from service.domain.errors import ApiError, validation_error
from service.domain.ids import new_id
from service.domain.language import Said
from service.domain.pagination import Page, PageRequest, page_of
from service.domain.pins import hash_pin_off_loop
from service.domain.staff import StaffAccount
from service.domain.text import refuse_hidden_characters
from service.flows import partners as partners_flow
from service.flows.credentials import (
    Known,
    Lockout,
    Refusals,
    accept,
    check_secret,
    count_failure,
)
from service.flows.database import Database, connection
from service.sealing import Sealer, SealError

log = logging.getLogger("youdai.staff")

WRONG_CREDENTIALS = Said("The email or password is wrong", "邮箱或密码错误")
TOTP_CONTEXT = "staff-totp:"


def _sealing_context(staff_id: str) -> str:
    """A sealed secret opens only for the account it was sealed for."""
    return TOTP_CONTEXT + staff_id


@dataclass(frozen=True, slots=True)
class Invitation:
    account: StaffAccount
    setup_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SignedIn:
    account: StaffAccount
    session_secret: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str


#: An account id that is not one (an unknown id in a URL, a row gone since).
_NO_ACCOUNT = Said("No such staff account", "没有此员工账户")


# Invitations and setup ------------------------------------------------------------------


async def invite(
    db: Database,
    caller: Principal | None,
    *,
    email: str,
    role: StaffRole,
    display_name: str = "",
    partner_id: str | None = None,
    clock: Clock = system_clock,
) -> Invitation:
    """A new account and its one-time setup token (valid 72 hours); `caller` None is
    the command line (`youdai create-staff`)."""
    rules.check_partner_for_role(role, partner_id)
    refuse_hidden_characters("display_name", display_name)
    email = rules.normalise_email(email)
    token = rules.generate_secret(rules.SETUP_PREFIX)
    expires_at = clock() + rules.INVITATION_TTL
    async with connection(db) as conn, conn.transaction():
        if partner_id is not None:
            await partners_flow.require(conn, partner_id)
        account = await staff_db.create_account(
            conn,
            staff_id=new_id("staff"),
            email=email,
            display_name=display_name or email.partition("@")[0],
            role=str(role),
            partner_id=partner_id,
        )
        if account is None:
            raise ApiError(
                "conflict",
                Said("A staff account with this email exists", "已有使用此邮箱的员工账户"),
            )
        await staff_db.create_invitation(conn, account.id, rules.hash_secret(token), expires_at)
        await audit_db.record(
            conn,
            caller,
            "staff.invite",
            "staff",
            account.id,
            {
                "email": [None, account.email],
                "role": [None, account.role],
                "partner_id": [None, account.partner_id],
            },
        )
    return Invitation(account, token, expires_at)


async def new_setup_link(
    db: Database, caller: Principal | None, staff_id: str, *, clock: Clock = system_clock
) -> Invitation:
    """A fresh setup token for an existing account (a lost or expired invitation)."""
    token = rules.generate_secret(rules.SETUP_PREFIX)
    expires_at = clock() + rules.INVITATION_TTL
    async with connection(db) as conn, conn.transaction():
        account = await staff_db.lock_account(conn, staff_id)
        if account is None:
            raise ApiError("not_found", _NO_ACCOUNT)
        await staff_db.create_invitation(conn, account.id, rules.hash_secret(token), expires_at)
        await audit_db.record(conn, caller, "staff.setup_link", "staff", account.id, {})
    return Invitation(account, token, expires_at)


async def set_up(pool: asyncpg.Pool, setup_token: str, password: str) -> StaffAccount:
    """Set the password of an invitation's account; the link works once. Setting a
    password ends the account's sessions (a reset must lock out whoever had it)."""
    async with pool.acquire() as conn, conn.transaction():
        staff_id = await staff_db.take_invitation(conn, rules.hash_secret(setup_token))
        if staff_id is None:
            raise ApiError(
                "not_found",
                Said("The setup link is unknown, used or expired", "设置链接未知、已使用或已过期"),
            )
        account = await staff_db.lock_account(conn, staff_id)
        assert account is not None  # the invitation references it
        # Checked inside the transaction: a refused password leaves the link unused.
        rules.check_password(password, email=account.email, display_name=account.display_name)
        password_hash = await hash_pin_off_loop(password)
        await staff_db.set_password(conn, staff_id, password_hash)
        await staff_db.end_all_sessions(conn, staff_id)
        await audit_db.record(conn, None, "staff.password_set", "staff", staff_id, {})
    return account


# Sign-in and sessions -------------------------------------------------------------------


class _StaffAccounts:
    """Staff accounts and the attempts at emails no account has (flows.credentials)."""

    async def lock(self, conn: asyncpg.Connection, key: str) -> Known[SignInFacts] | None:
        facts = await staff_db.lock_for_sign_in(conn, key)
        if facts is None:
            return None
        usable = facts.account.status == "active"
        return Known(
            facts.account.id, facts.password_hash, facts.locked, facts.locked_until, facts, usable
        )

    async def lock_unknown(self, conn: asyncpg.Connection, key: str) -> Lockout:
        attempts = await staff_db.lock_unknown_email(conn, key)
        return Lockout(attempts.locked, attempts.locked_until)

    async def count_failure(self, conn: asyncpg.Connection, row_id: str) -> datetime | None:
        await staff_db.record_failed_sign_in(conn, row_id, *_LOCKOUT)
        return None

    async def count_unknown_failure(self, conn: asyncpg.Connection, key: str) -> datetime | None:
        await staff_db.record_failed_sign_in_unknown(conn, key, *_LOCKOUT)
        return None

    async def clear_failures(self, conn: asyncpg.Connection, row_id: str) -> None:
        await staff_db.clear_failed_sign_ins(conn, row_id)

    async def store_hash(self, conn: asyncpg.Connection, row_id: str, new_hash: str) -> None:
        await staff_db.set_password(conn, row_id, new_hash)


_ACCOUNTS = _StaffAccounts()
_LOCKOUT = (rules.ATTEMPT_WINDOW, rules.LOCK_DURATION, rules.MAX_FAILED_SIGNINS)


async def sign_in(
    pool: asyncpg.Pool,
    sealer: Sealer,
    *,
    email: str,
    password: str,
    totp_code: str | None,
    address: str,
    address_limit: int,
    clock: Clock = system_clock,
) -> SignedIn:
    """A new session, or the docs/staff.md refusal.

    An unknown email, an account without a password yet, a disabled account and a wrong
    password answer the same `unauthenticated` and take the same time (a hash is verified
    either way); five failures in 15 minutes lock the account (and an unknown email
    alike) for 15 minutes. The account row stays locked while the password is checked, so concurrent
    guesses are counted one by one, in every process. Failures also count against the
    client `address`, together with every other kind of sign-in (flows.throttle). The
    order of these checks is flows.credentials.check_secret, shared with holders; a
    wrong second-factor code counts as a failure too.
    """
    email = rules.normalise_email(email)
    signed_in: SignedIn | None = None
    async with pool.acquire() as conn, conn.transaction():
        checked = await check_secret(
            conn,
            _ACCOUNTS,
            _REFUSALS,
            email,
            password,
            address=address,
            address_limit=address_limit,
            clock=clock,
        )
        refusal = checked.refusal
        if checked.known is not None:
            refusal = await _second_factor(conn, sealer, checked.known, totp_code, address, clock)
            if refusal is None:
                # Failures are forgotten only once both factors are right.
                await accept(conn, _ACCOUNTS, checked.known, password)
                signed_in = await _open_session(conn, checked.known.row.account, clock())
    if refusal is not None:
        raise refusal
    assert signed_in is not None
    log.info("staff signed in", extra={"staff_id": signed_in.account.id})
    return signed_in


async def _second_factor(
    conn: asyncpg.Connection,
    sealer: Sealer,
    known: Known[SignInFacts],
    code: str | None,
    address: str,
    clock: Clock,
) -> ApiError | None:
    """The refusal of a missing or wrong authenticator code (a wrong one is counted),
    or None when the account has no second factor or the code is right."""
    facts = known.row
    if not facts.account.totp_enabled:
        return None
    if not code:
        return ApiError(
            "totp_required",
            Said("Enter the code of your authenticator app", "请输入身份验证器应用中的验证码"),
        )
    if await _accept_code(conn, sealer, facts, code, clock()):
        return None
    await count_failure(conn, _ACCOUNTS, known.id, address=address, now=clock())
    return ApiError(
        "unauthenticated",
        Said("The authenticator code is wrong or was already used", "验证码错误或已被使用"),
    )


async def _accept_code(
    conn: asyncpg.Connection, sealer: Sealer, facts: SignInFacts, code: str, now: datetime
) -> bool:
    staff_id = facts.account.id
    secret = _open_secret(sealer, staff_id, facts.totp_secret_sealed)
    step = totp.accepted_step(secret, code, now, facts.totp_last_step)
    return step is not None and await staff_db.accept_totp_step(conn, staff_id, step)


def _open_secret(sealer: Sealer, staff_id: str, sealed: bytes | None) -> str:
    if sealed is None:
        raise ApiError("conflict", Said("No second factor is enrolled", "尚未绑定第二因素"))
    try:
        return sealer.open(bytes(sealed), context=_sealing_context(staff_id)).decode()
    except SealError:
        log.error(
            "a TOTP secret does not open with this service's key", extra={"staff_id": staff_id}
        )
        raise ApiError(
            "internal_error", Said("The second factor cannot be checked", "无法校验第二因素")
        ) from None


async def _open_session(conn: asyncpg.Connection, account: StaffAccount, now: datetime) -> SignedIn:
    secret = rules.generate_secret(rules.SESSION_PREFIX)
    expires_at = rules.session_expiry(now)
    await staff_db.create_session(
        conn,
        session_id=new_id("staff_session"),
        secret_hash=rules.hash_secret(secret),
        staff_id=account.id,
        role=account.role,
        expires_at=expires_at,
    )
    return SignedIn(account, secret, rules.csrf_token_for(secret), expires_at)


#: The same `unauthenticated` whether or not a failure locked the account (docs/staff.md).
_REFUSALS = Refusals(
    wrong_secret=WRONG_CREDENTIALS,
    locked_for=lambda minutes: Said(
        f"Too many failed sign-ins: try again in {minutes} minute(s)",
        f"登录失败次数过多：请在 {minutes} 分钟后再试",
    ),
)


def looks_like_session_secret(secret: str) -> bool:
    return secret.startswith(rules.SESSION_PREFIX) and len(secret) <= 100


async def session_principal(
    pool: asyncpg.Pool, secret: str, policy: rules.TotpPolicy
) -> StaffPrincipal | None:
    """The person behind a session cookie, or None when it is not a live session."""
    if not looks_like_session_secret(secret):
        return None
    async with pool.acquire() as conn:
        facts = await staff_db.live_session(
            conn, rules.hash_secret(secret), rules.SESSION_IDLE, rules.SESSION_TOUCH_RESOLUTION
        )
    if facts is None:
        return None
    account = facts.account
    role = StaffRole(account.role)
    return StaffPrincipal.of(
        staff_id=account.id,
        staff_role=role,
        partner_id=account.partner_id,
        display_name=account.display_name,
        email=account.email,
        session_id=facts.session_id,
        must_enrol_totp=rules.totp_required(policy, role) and not account.totp_enabled,
    )


async def sign_out(pool: asyncpg.Pool, caller: StaffPrincipal) -> None:
    async with pool.acquire() as conn:
        await staff_db.end_session(conn, caller.session_id)


async def me(pool: asyncpg.Pool, caller: StaffPrincipal) -> StaffAccount:
    async with pool.acquire() as conn:
        account = await staff_db.get_account(conn, caller.staff_id)
    if account is None:
        raise ApiError(
            "unauthenticated", Said("The session is unknown or has expired", "会话未知或已过期")
        )
    return account


# Second factor --------------------------------------------------------------------------


async def enrol_totp(pool: asyncpg.Pool, sealer: Sealer, caller: StaffPrincipal) -> TotpEnrolment:
    """A new pending secret; it counts only once confirmed with a code. An account with
    a second factor already must have it reset by a bureau_admin first."""
    secret = totp.new_secret()
    async with pool.acquire() as conn, conn.transaction():
        account = await staff_db.lock_account(conn, caller.staff_id)
        assert account is not None
        if account.totp_enabled:
            raise ApiError(
                "conflict", Said("A second factor is enrolled already", "已绑定第二因素")
            )
        sealed = sealer.seal(secret.encode(), context=_sealing_context(caller.staff_id))
        await staff_db.set_pending_totp(conn, caller.staff_id, sealed)
    return TotpEnrolment(secret, totp.otpauth_uri(secret, caller.email))


#: Showing or confirming an enrolment before POST /v1/staff/me/totp (showing it is
#: not_found, confirming it a conflict).
_NO_ENROLMENT = Said(
    "No enrolment is in progress: POST /v1/staff/me/totp first",
    "没有进行中的绑定：请先 POST /v1/staff/me/totp",
)


async def pending_otpauth_uri(pool: asyncpg.Pool, sealer: Sealer, caller: StaffPrincipal) -> str:
    """The otpauth URI of the enrolment in progress (drawn as a QR by the console)."""
    async with pool.acquire() as conn, conn.transaction():
        sealed = await staff_db.pending_totp(conn, caller.staff_id)
    if sealed is None:
        raise ApiError("not_found", _NO_ENROLMENT)
    return totp.otpauth_uri(_open_secret(sealer, caller.staff_id, sealed), caller.email)


async def confirm_totp(
    pool: asyncpg.Pool,
    sealer: Sealer,
    caller: StaffPrincipal,
    code: str,
    *,
    clock: Clock = system_clock,
) -> StaffAccount:
    async with pool.acquire() as conn, conn.transaction():
        sealed = await staff_db.pending_totp(conn, caller.staff_id)
        if sealed is None:
            raise ApiError("conflict", _NO_ENROLMENT)
        secret = _open_secret(sealer, caller.staff_id, sealed)
        step = totp.accepted_step(secret, code, clock(), None)
        if step is None:
            raise validation_error(
                "code", Said("is not the current code of this secret", "不是此密钥当前的验证码")
            )
        await staff_db.enable_totp(conn, caller.staff_id, bytes(sealed), step)
        await audit_db.record(
            conn,
            caller,
            "staff.totp_enable",
            "staff",
            caller.staff_id,
            {"totp_enabled": [False, True]},
        )
        account = await staff_db.get_account(conn, caller.staff_id)
    assert account is not None
    return account


# Management ----------------------------------------------------------------------------


async def list_staff(
    db: Database, page: PageRequest, filters: dict[str, Any]
) -> Page[StaffAccount]:
    async with connection(db) as conn:
        return page_of(await staff_db.list_accounts(conn, page, **filters), page)


async def get_staff(db: Database, staff_id: str) -> StaffAccount:
    async with connection(db) as conn:
        account = await staff_db.get_account(conn, staff_id)
    if account is None:
        raise ApiError("not_found", _NO_ACCOUNT)
    return account


async def update_staff(
    db: Database,
    caller: Principal,
    staff_id: str,
    changes: dict[str, Any],
    *,
    reset_totp: bool = False,
) -> StaffAccount:
    """Change display name, role, partner or status, or reset the second factor (a lost
    phone: the account enrols again). Disabling an account, changing its role or
    partner, or resetting its factor ends all its sessions at once; the last active
    bureau_admin cannot be disabled or demoted."""
    async with connection(db) as conn, conn.transaction():
        admins = await staff_db.lock_active_bureau_admins(conn)
        before = await staff_db.lock_account(conn, staff_id)
        if before is None:
            raise ApiError("not_found", _NO_ACCOUNT)
        role = StaffRole(changes.get("role", before.role))
        if (
            "role" in changes
            and "partner_id" not in changes
            and role is not StaffRole.PARTNER_MANAGER
        ):
            changes["partner_id"] = None
        partner_id = changes.get("partner_id", before.partner_id)
        rules.check_partner_for_role(role, partner_id)
        if partner_id is not None and partner_id != before.partner_id:
            await partners_flow.require(conn, partner_id)
        rules.check_keeps_a_bureau_admin(
            rules.StaffSummary(StaffRole(before.role), before.status),
            rules.StaffSummary(role, changes.get("status", before.status)),
            other_active_admins=len([a for a in admins if a != staff_id]),
        )
        stored = {**changes, "role": str(role)} if "role" in changes else dict(changes)
        after = await staff_db.update_account(conn, staff_id, stored)
        diff = {
            name: [getattr(before, name), getattr(after, name)]
            for name in ("display_name", "role", "partner_id", "status")
            if getattr(before, name) != getattr(after, name)
        }
        if reset_totp and after.totp_enabled:
            await staff_db.reset_totp(conn, staff_id)
            diff["totp_enabled"] = [True, False]
            after = await staff_db.get_account(conn, staff_id) or after
        ended = 0
        if any(name in diff for name in ("role", "partner_id", "status", "totp_enabled")):
            ended = await staff_db.end_all_sessions(conn, staff_id)
        if diff:
            await audit_db.record(conn, caller, "staff.update", "staff", staff_id, diff)
    if ended:
        log.info("staff sessions ended", extra={"staff_id": staff_id, "sessions": ended})
    return after


async def ensure_account_with_password(
    conn: asyncpg.Connection,
    *,
    email: str,
    role: StaffRole,
    display_name: str,
    partner_id: str | None,
    password: str,
) -> StaffAccount:
    """The account with this email, made if missing, with `password` set (the demo's
    accounts: every start prints fresh passwords that work)."""
    rules.check_password(password, email=email, display_name=display_name)
    password_hash = await hash_pin_off_loop(password)
    async with conn.transaction():
        account = await staff_db.find_by_email(conn, email)
        if account is None:
            account = await staff_db.create_account(
                conn,
                staff_id=new_id("staff"),
                email=rules.normalise_email(email),
                display_name=display_name,
                role=str(role),
                partner_id=partner_id,
            )
            assert account is not None
            await audit_db.record(
                conn,
                None,
                "staff.create",
                "staff",
                account.id,
                {"email": [None, account.email], "role": [None, account.role]},
            )
        await staff_db.set_password(conn, account.id, password_hash)
        await staff_db.end_all_sessions(conn, account.id)
        await audit_db.record(conn, None, "staff.password_set", "staff", account.id, {})
    return account
