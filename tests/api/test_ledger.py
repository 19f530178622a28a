"""The tamper-evident log through HTTP (docs/ledger.md): every redemption and reversal a leaf
within seconds, checkpoints signed with the JWKS's key, proofs an auditor recomputes
with hashlib alone, and a log changed behind the service's back stops the signing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import jwt
import pytest
from aiohttp.test_utils import TestClient

from service.app_keys import KEYRING, POOL, SETTINGS
from service.domain.auth import Role
from service.flows import ledger as ledger_flow
from tests.helpers import Till, bearer, make_key

LEAF_FIELDS = {
    "index",
    "id",
    "kind",
    "voucher_id",
    "offer_id",
    "partner_id",
    "holder_category",
    "purchase_amount",
    "discount_amount",
    "currency",
    "created_at",
}


# An auditor's own few lines of hashlib (RFC 9162 §2.1), not the service's code.
def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node(mth(hashes[:k]), mth(hashes[k:]))


def root_from_path(index: int, size: int, digest: bytes, path: list[bytes]) -> bytes:
    fn, sn, r = index, size - 1, digest
    for p in path:
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0
    return r


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


async def redeem(client: TestClient, till: Till, amount: int) -> dict:
    answer = await client.post(
        "/v1/redemptions",
        json={"token": till.token, "purchase_amount": amount},
        headers={**till.scanner, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert answer.status == 201, await answer.text()
    return await answer.json()


async def logged(client: TestClient, admin: dict, size: int, within: float = 5.0) -> dict:
    """The checkpoint once the log holds `size` entries: docs/ledger.md's five seconds.

    A checkpoint the app signed while the last entries were still arriving is followed by
    the next one only CHECKPOINT_INTERVAL later; rather than wait for it, the test runs a
    round of its own at that instant (what the app's rounds do once it comes)."""
    deadline = time.monotonic() + within
    app = client.app
    while True:
        answer = await client.get("/v1/ledger/checkpoint", headers=admin)
        body = await answer.json() if answer.status == 200 else None
        if body is not None and body["size"] >= size:
            return body
        if body is not None:
            due = datetime.fromisoformat(body["at"]) + ledger_flow.CHECKPOINT_INTERVAL
            await ledger_flow.sequence(app[POOL], app[KEYRING], app[SETTINGS], due)
        assert time.monotonic() < deadline, f"the log did not reach {size} in {within} s"
        await asyncio.sleep(0.2)


async def round_at(client: TestClient, at: datetime, *, size: int) -> ledger_flow.Round:
    """A sequencer round of this test's own at instant `at`, once the log holds `size`
    entries (the app's own rounds may append them first)."""
    app = client.app
    deadline = time.monotonic() + 5
    while (
        done := await ledger_flow.sequence(app[POOL], app[KEYRING], app[SETTINGS], at)
    ).size < size:
        assert time.monotonic() < deadline, f"the log did not reach {size}"
        await asyncio.sleep(0.1)
    return done


async def all_entries(client: TestClient, admin: dict) -> list[dict]:
    items, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(f"/v1/ledger/entries?{query}", headers=admin)).json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


async def test_every_redemption_and_reversal_is_a_leaf_under_a_signed_checkpoint(
    client: TestClient, db: asyncpg.Connection, settings, admin
) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 300, "uses_per_voucher": 10}
    )
    first = await redeem(client, till, 1000)
    await redeem(client, till, 2000)
    reversal = await (
        await client.post(
            f"/v1/redemptions/{first['id']}/reversal", json={"reason": "x"}, headers=admin
        )
    ).json()
    checkpoint = await logged(client, admin, 3)
    assert checkpoint["size"] == 3

    entries = await all_entries(client, admin)
    assert [entry["index"] for entry in entries] == [0, 1, 2]
    leaves = [json.loads(entry["leaf"]) for entry in entries]
    for entry, leaf in zip(entries, leaves, strict=True):
        # Canonical JSON: keys sorted, no spaces, the very text that was hashed.
        assert entry["leaf"] == json.dumps(leaf, sort_keys=True, separators=(",", ":"))
        assert set(leaf) - {"redemption_id"} == LEAF_FIELDS
        assert till.holder_id not in entry["leaf"]
    assert [leaf["kind"] for leaf in leaves] == ["redemption", "redemption", "reversal"]
    assert leaves[2]["id"] == reversal["id"] and leaves[2]["redemption_id"] == first["id"]
    assert leaves[2]["discount_amount"] == 300 and leaves[0]["holder_category"] == "veteran"

    hashes = [leaf_hash(entry["leaf"].encode()) for entry in entries]
    assert unb64(checkpoint["root"]) == mth(hashes)

    jwks = await (await client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(checkpoint["jws"])
    assert header["typ"] == "yd-checkpoint+jwt"
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    claims = jwt.decode(
        checkpoint["jws"], jwt.PyJWK(jwk).key, algorithms=["EdDSA"], options={"verify_aud": False}
    )
    assert claims == {
        "origin": client.app[SETTINGS].issuer,
        "size": 3,
        "root": checkpoint["root"],
        "at": claims["at"],
    }

    for index in range(3):
        proof = await (
            await client.get(f"/v1/ledger/proofs/inclusion?index={index}&size=3", headers=admin)
        ).json()
        assert unb64(proof["leaf_hash"]) == hashes[index]
        path = [unb64(p) for p in proof["path"]]
        assert root_from_path(index, 3, hashes[index], path) == mth(hashes)
    consistency = await (
        await client.get("/v1/ledger/proofs/consistency?from=2&to=3", headers=admin)
    ).json()
    # SUBPROOF(2, D[3]): the old root is a complete subtree, so the proof is the third leaf.
    assert [unb64(p) for p in consistency["path"]] == [hashes[2]]
    assert (consistency["from"], consistency["to"]) == (2, 3)


async def test_a_partner_proves_its_own_entries_only(
    client: TestClient, db: asyncpg.Connection, settings, admin
) -> None:
    ours = await Till(db, settings).open()
    theirs = await Till(db, settings).open()
    await redeem(client, ours, 1000)
    await redeem(client, theirs, 1000)
    await logged(client, admin, 2)
    entries = await all_entries(client, admin)
    index_of = {json.loads(e["leaf"])["partner_id"]: e["index"] for e in entries}
    own = await client.get(
        f"/v1/ledger/proofs/inclusion?index={index_of[ours.partner_id]}&size=2",
        headers=ours.partner,
    )
    assert own.status == 200
    other = await client.get(
        f"/v1/ledger/proofs/inclusion?index={index_of[theirs.partner_id]}&size=2",
        headers=ours.partner,
    )
    assert other.status == 404
    for path in ("/v1/ledger/checkpoint", "/v1/ledger/entries"):
        assert (await client.get(path, headers=ours.partner)).status == 403
    scanner = bearer(await make_key(db, Role.SCANNER, ours.partner_id))
    assert (await client.get("/v1/ledger/checkpoint", headers=scanner)).status == 403


async def test_proof_queries_beyond_the_log_are_refused(client: TestClient, admin) -> None:
    for query in (
        "proofs/inclusion?index=5&size=2",
        "proofs/inclusion?index=0&size=99999999999999999999999",
        "proofs/consistency?from=0&to=1",
        "proofs/consistency?from=3&to=2",
        "entries?start=-1",
    ):
        answer = await client.get(f"/v1/ledger/{query}", headers=admin)
        assert answer.status == 422, query
        assert (await answer.json())["code"] == "validation_error"
    # Sizes the log has not reached are trees that do not exist (yet).
    for query in (
        "proofs/inclusion?index=0&size=1",
        "proofs/consistency?from=1&to=1",
        "checkpoint",
    ):
        answer = await client.get(f"/v1/ledger/{query}", headers=admin)
        assert answer.status == 404, query
    # A cursor made up is a position past the end, as in every list.
    made_up = await client.get("/v1/ledger/entries?cursor=bm90LWEtbnVtYmVy", headers=admin)
    assert (await made_up.json()) == {"items": [], "next_cursor": None}


#: What a database superuser might change (the append-only trigger set aside), and the
#: words the halt names it with.
TAMPERING = {
    "a stored leaf hash": (
        "ledger_nodes",
        "UPDATE ledger_nodes SET hash = sha256('forged') WHERE level = 0 AND idx = 0",
        "entry 0: the stored leaf hash",
    ),
    "a leaf": (
        "ledger_entries",
        "UPDATE ledger_entries SET leaf = replace(leaf, '\"discount_amount\":300', "
        "'\"discount_amount\":30') WHERE log_index = 1",
        "entry 1: the leaf differs",
    ),
    "a redemption": (
        "redemptions",
        "UPDATE redemptions SET discount_amount = 30 WHERE id = (SELECT min(id) FROM redemptions)",
        "entry 0: the leaf differs from its ledger row",
    ),
    "a subtree hash": (
        "ledger_nodes",
        "UPDATE ledger_nodes SET hash = sha256('forged') WHERE level = 1 AND idx = 0",
        "entries 0–1: the stored subtree hash",
    ),
}


@pytest.mark.parametrize("changed", sorted(TAMPERING))
async def test_a_log_changed_behind_the_services_back_stops_the_signing_not_the_tills(
    client: TestClient, db: asyncpg.Connection, settings, admin, changed: str
) -> None:
    table, change, named = TAMPERING[changed]
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 300, "uses_per_voucher": 10}
    )
    await redeem(client, till, 1000)
    await redeem(client, till, 1000)
    first = await logged(client, admin, 2)
    trigger = await db.fetchval(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname LIKE '%append_only'",
        table,
    )
    async with db.transaction():
        await db.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        assert (await db.execute(change)).endswith(" 1")
        await db.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
    await redeem(client, till, 1000)
    later = datetime.now(UTC) + timedelta(minutes=2)
    done = await round_at(client, later, size=3)
    assert not done.consistent and done.signed is None
    assert (await (await client.get("/v1/ledger/checkpoint", headers=admin)).json()) == first
    reason = await db.fetchval("SELECT reason FROM ledger_halts")
    assert reason.startswith(named), reason
    # Nothing signs again, whatever the time; the tills and /readyz carry on.
    again = await round_at(client, later + timedelta(minutes=5), size=3)
    assert again.signed is None and not again.consistent
    await redeem(client, till, 1000)
    assert (await client.get("/readyz")).status == 200
    deadline = time.monotonic() + 5
    while "youdai_ledger_consistent 0.0" not in (await (await client.get("/metrics")).text()):
        assert time.monotonic() < deadline, "the metric did not turn to 0"
        await asyncio.sleep(0.2)


async def test_an_untouched_log_keeps_signing(
    client: TestClient, db: asyncpg.Connection, settings, admin
) -> None:
    till = await Till(db, settings).open(
        offer={"kind": "amount_off", "amount_off": 300, "uses_per_voucher": 10}
    )
    await redeem(client, till, 1000)
    await logged(client, admin, 1)
    await redeem(client, till, 1000)
    later = datetime.now(UTC) + timedelta(minutes=2)
    done = await round_at(client, later, size=2)
    assert done.consistent
    assert (await logged(client, admin, 2))["size"] == 2
