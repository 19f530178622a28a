"""API keys: issued to partners and their tills, used by machines, revoked at once."""

from __future__ import annotations

import asyncpg

from service.db import audit as audit_db
from service.db import keys as keys_db
from service.db.keys import Key
from service.domain.auth import Principal, Role, key_caller
from service.domain.errors import ApiError
from service.domain.ids import new_id
from service.domain.keys import generate_key, hash_key
from service.domain.language import Said
from service.domain.pagination import Page, PageRequest, page_of
from service.domain.staff import check_key_access
from service.flows import partners as partners_flow
from service.flows.database import Database, connection
from service.flows.key_cache import KeyCache


async def issue(
    conn: asyncpg.Connection,
    *,
    role: Role,
    partner_id: str | None,
    label: str,
    actor: Principal | None,
) -> tuple[Key, str]:
    """A new key and its secret (the only time the secret exists in clear). The key
    routes check the partner (issue_for_partner); the CLI may make an admin key."""
    secret = generate_key()
    async with conn.transaction():
        key = await keys_db.insert_key(
            conn, new_id("key"), hash_key(secret), str(role), partner_id, label
        )
        issued = {
            "role": [None, str(role)],
            "partner_id": [None, partner_id],
            "label": [None, label],
        }
        await audit_db.record(conn, actor, "key.issue", "api_key", key.id, issued)
    return key, secret


async def issue_for_partner(
    db: Database, caller: Principal, partner_id: str, role: str, label: str
) -> tuple[Key, str]:
    """A partner or scanner key of an enrolled partner."""
    check_key_access(caller, partner_id, role)
    async with connection(db) as conn:
        await partners_flow.require(conn, partner_id)
        return await issue(conn, role=Role(role), partner_id=partner_id, label=label, actor=caller)


async def list_page(
    db: Database, caller: Principal, partner_id: str, page: PageRequest
) -> Page[Key]:
    check_key_access(caller, partner_id, None)
    async with connection(db) as conn:
        await partners_flow.require(conn, partner_id)
        return page_of(await keys_db.list_keys(conn, partner_id, page), page)


async def revoke(
    db: Database,
    caller: Principal | None,
    key_id: str,
    cache: KeyCache | None = None,
) -> Key:
    """Revoke once; revoking again keeps (and answers) the first revocation.

    The revoking process's `cache` forgets the key as soon as the revocation commits;
    the others do when PostgreSQL's announcement reaches them, moments later.
    """
    async with connection(db) as conn, conn.transaction():
        key = await keys_db.get_key(conn, key_id)
        if key is None:
            raise ApiError("not_found", Said("No such key", "没有此密钥"))
        if caller is not None:
            check_key_access(caller, key.partner_id, key.role)
        revoked = await keys_db.set_revoked(conn, key_id)
        if revoked is None:
            return key
        change = {
            "revoked_at": [None, revoked.revoked_at.isoformat() if revoked.revoked_at else None]
        }
        await audit_db.record(conn, caller, "key.revoke", "api_key", key_id, change)
    if cache is not None:
        cache.forget(key_id)
    return revoked


async def caller_of(pool: asyncpg.Pool, cache: KeyCache, secret: str) -> Principal | None:
    """The caller a key's secret names, or None when the key is unknown or revoked.

    A live key is answered from the process's cache when it holds it; the cache forgets
    a key as soon as PostgreSQL announces its change, so a revoked key fails in every
    process within moments, and reads it afresh when its last_used_at is due.
    """
    key_hash = hash_key(secret)
    key = cache.lookup(key_hash)
    if key is None:
        read_since = cache.version
        async with pool.acquire() as conn:
            key = await keys_db.live_key(conn, key_hash)
        if key is None:
            return None
        cache.remember(key_hash, key, read_since)
    return key_caller(Role(key.role), key.id, key.partner_id, key.label)
