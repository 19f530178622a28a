"""What is sealed under the key-encryption key (YOUDAI_SECRET_KEY), and what changing or
losing that key does to it (deploy/RUNBOOK.md).

Two kinds of secret are sealed with it (service/sealing.py): the private parts of the
voucher signing keys and the staff TOTP secrets (enrolled or being enrolled). Both
commands below treat them alike, each in one transaction:

- `reseal` (`youdai rotate-secret-key`): everything that opens with the old key is
  sealed again under the new one; nothing is lost.
- `reset` (`youdai reset-signing-keys`, the old key is lost): what opens with the new key
  stays, what opens with a key still in reach is sealed again, and the rest cannot be
  saved: such signing keys are removed (a new one signs; a QR already on a screen stops
  scanning and the holder opens the voucher again) and such second factors are reset
  (the person signs in with their password and enrols again, as after a lost phone).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from service.db import audit as audit_db
from service.db import signing_keys as signing_db
from service.db import staff as staff_db
from service.domain.tokens import signing_key_from_pem
from service.flows.keyring import Keyring, SecretKeyMismatch, open_key, seal_key
from service.flows.staff import TOTP_CONTEXT
from service.sealing import Sealer, SealError


@dataclass(slots=True)
class Resealed:
    """What `reseal` did: counts, and the accounts whose factor opened with neither key."""

    signing_keys: int = 0
    totp_secrets: int = 0
    totp_unopened: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ResetPlan:
    """What `reset` keeps, seals again and gives up, by signing key id and staff email."""

    keys_kept: list[str] = field(default_factory=list)
    keys_resealed: list[str] = field(default_factory=list)
    keys_removed: list[str] = field(default_factory=list)
    totp_kept: list[str] = field(default_factory=list)
    totp_resealed: list[str] = field(default_factory=list)
    totp_reset: list[str] = field(default_factory=list)
    #: The key that signs now; the one made to sign afterwards, when one had to be.
    active: str | None = None
    new_active: str | None = None

    @property
    def makes_a_new_key(self) -> bool:
        return self.active is None or self.active in self.keys_removed

    @property
    def changes_anything(self) -> bool:
        return bool(
            self.keys_resealed or self.keys_removed or self.totp_resealed or self.totp_reset
        )


def _opens(sealer: Sealer | None, sealed: bytes | None, context: str) -> bytes | None:
    if sealer is None or sealed is None:
        return None
    try:
        return sealer.open(sealed, context=context)
    except SealError:
        return None


def _totp_context(staff_id: str) -> str:
    return TOTP_CONTEXT + staff_id


def _move(sealed: bytes | None, context: str, old: Sealer, new: Sealer) -> bytes | None:
    """`sealed` under `new`; SealError when it does not open under `old`."""
    return None if sealed is None else new.seal(old.open(sealed, context=context), context=context)


async def reseal(conn: asyncpg.Connection, old: Sealer, new: Sealer) -> Resealed:
    """Seal every signing key and TOTP secret from `old` to `new` (all or none for the
    signing keys: one that does not open with `old` is a SecretKeyMismatch). A TOTP
    secret that does not open with `old` either is left as it is and named."""
    done = Resealed()
    async with conn.transaction():
        for stored in await signing_db.all_keys(conn, for_update=True):
            try:
                key = (
                    signing_key_from_pem(stored.private_pem, stored.kid)
                    if stored.private_pem is not None
                    else open_key(old, stored)
                )
            except SealError:
                raise SecretKeyMismatch(
                    f"signing key {stored.kid} does not open with the current "
                    "YOUDAI_SECRET_KEY (or the data folder's secret.key): nothing was changed"
                ) from None
            await signing_db.store_sealed(conn, stored.kid, seal_key(new, key))
            done.signing_keys += 1
        for account in await staff_db.sealed_totp_secrets(conn):
            context = _totp_context(account.staff_id)
            try:
                secret = _move(account.secret_sealed, context, old, new)
                pending = _move(account.pending_sealed, context, old, new)
            except SealError:
                done.totp_unopened.append(account.email)
                continue
            await staff_db.store_sealed_totp(conn, account.staff_id, secret, pending)
            done.totp_secrets += 1
    return done


async def plan_reset(conn: asyncpg.Connection, new: Sealer, old: Sealer | None) -> ResetPlan:
    """What `reset` would do now (for the confirmation); changes nothing."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        return await _judge(conn, new, old)
    finally:
        await transaction.rollback()  # only a look: the row locks go with it


def _key_opens(sealer: Sealer | None, stored: signing_db.StoredKey) -> bool:
    if sealer is None:
        return False
    try:
        open_key(sealer, stored)
    except SealError:
        return False
    return True


async def _judge(conn: asyncpg.Connection, new: Sealer, old: Sealer | None) -> ResetPlan:
    plan = ResetPlan(active=await signing_db.active_kid(conn))
    for stored in await signing_db.all_keys(conn, for_update=True):
        if _key_opens(new, stored):
            plan.keys_kept.append(stored.kid)
        elif stored.private_pem is not None or _key_opens(old, stored):
            plan.keys_resealed.append(stored.kid)
        else:
            plan.keys_removed.append(stored.kid)
    for account in await staff_db.sealed_totp_secrets(conn):
        context = _totp_context(account.staff_id)
        sealed = [s for s in (account.secret_sealed, account.pending_sealed) if s is not None]
        if all(_opens(new, s, context) is not None for s in sealed):
            plan.totp_kept.append(account.email)
        elif all(_opens(old, s, context) is not None for s in sealed):
            plan.totp_resealed.append(account.email)
        else:
            plan.totp_reset.append(account.email)
    return plan


async def reset(
    conn: asyncpg.Connection, keyring: Keyring, new: Sealer, old: Sealer | None
) -> ResetPlan:
    """After a lost key-encryption key: keep or re-seal under `new` what can be opened,
    remove the signing keys and reset the second factors that cannot, and make sure a
    key that opens with `new` signs. `keyring` seals with `new`. One transaction."""
    async with conn.transaction():
        plan = await _judge(conn, new, old)
        for stored in await signing_db.all_keys(conn):
            if stored.kid in plan.keys_removed:
                await signing_db.remove(conn, stored.kid)
            elif stored.kid in plan.keys_resealed:
                if stored.private_pem is not None:
                    key = signing_key_from_pem(stored.private_pem, stored.kid)
                else:
                    assert old is not None
                    key = open_key(old, stored)
                await signing_db.store_sealed(conn, stored.kid, seal_key(new, key))
        if await signing_db.active_kid(conn) is None:
            plan.new_active = await keyring.ensure_active(conn)
        for account in await staff_db.sealed_totp_secrets(conn):
            context = _totp_context(account.staff_id)
            if account.email in plan.totp_resealed:
                assert old is not None
                await staff_db.store_sealed_totp(
                    conn,
                    account.staff_id,
                    _move(account.secret_sealed, context, old, new),
                    _move(account.pending_sealed, context, old, new),
                )
            elif account.email in plan.totp_reset:
                await staff_db.reset_totp(conn, account.staff_id)
                await staff_db.end_all_sessions(conn, account.staff_id)
                if account.totp_enabled:
                    await audit_db.record(
                        conn,
                        None,
                        "staff.update",
                        "staff",
                        account.staff_id,
                        {"totp_enabled": [True, False]},
                    )
    return plan


@dataclass(frozen=True, slots=True)
class SealedCount:
    """How many sealed secrets a database holds, and how many open with a given key."""

    signing_keys: int
    signing_keys_opening: int
    totp_secrets: int
    totp_opening: int

    @property
    def all_open(self) -> bool:
        return (
            self.signing_keys_opening == self.signing_keys
            and self.totp_opening == self.totp_secrets
        )


async def count_sealed(conn: asyncpg.Connection, sealer: Sealer | None) -> SealedCount:
    """What `youdai restore` tells the operator: the restored service needs the key that
    sealed these. Keys still in plain PEM (older releases) need none and count as open."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        keys = await signing_db.all_keys(conn)
        accounts = await staff_db.sealed_totp_secrets(conn)
    finally:
        await transaction.rollback()
    return SealedCount(
        signing_keys=len(keys),
        signing_keys_opening=sum(
            1 for key in keys if key.private_pem is not None or _key_opens(sealer, key)
        ),
        totp_secrets=len(accounts),
        totp_opening=sum(
            1
            for account in accounts
            if all(
                _opens(sealer, sealed, _totp_context(account.staff_id)) is not None
                for sealed in (account.secret_sealed, account.pending_sealed)
                if sealed is not None
            )
        ),
    )
