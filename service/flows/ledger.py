"""The tamper-evident log (docs/ledger.md): appending the ledger to it, signing checkpoints, and
the proofs anyone can check with a few lines of hashlib.

Where the sequencer runs: in every serving process, as a loop of rounds (`sequence`). A
round is one transaction that first takes a PostgreSQL advisory lock *for that
transaction* (`pg_try_advisory_xact_lock`): exactly one process appends at a time, across
workers and replicas, with no leader of our own to elect or fail over — when the process
holding it dies, PostgreSQL ends its transaction and the next round anywhere takes over.
What a round appends — entries, subtree hashes, the queue rows it consumed — commits
together or not at all, so a crash mid-batch leaves no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service import metrics
from service.clock import Clock, system_clock
from service.config import Settings
from service.db import ledger as ledger_db
from service.db import reports as reports_db
from service.db import signing_keys as signing_db
from service.db.connection import connected
from service.domain import merkle
from service.domain.auth import Principal
from service.domain.errors import ApiError, validation_error
from service.domain.language import Said
from service.domain.ledger import (
    CHECKPOINT_TYP,
    Checkpoint,
    LedgerRecord,
    b64,
    first_difference,
    leaf_of,
    sign_checkpoint,
    verify_signed,
)
from service.domain.pagination import MAX_LIMIT
from service.domain.tokens import verify_key_from_pem
from service.flows.keyring import Keyring

log = logging.getLogger("youdai.ledger")

#: Entries one round appends at the most (a round of 5 000 takes well under a second).
BATCH = 5_000
#: Seconds between rounds of each process: entries join the log within about this
#: (docs/ledger.md asks for 5 s), under load too, since a round takes a whole batch.
ROUND_INTERVAL = 1.0
#: Entries rechecked against their ledger rows and stored hashes before each checkpoint
#: (a complete subtree of 2^10 leaves): the whole log is swept again and again.
SWEEP_CHUNK = 1_024
#: A new checkpoint is signed when entries arrived and the last one is this old (docs/ledger.md:
#: at least once a minute while entries arrive).
CHECKPOINT_INTERVAL = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Round:
    appended: int
    size: int
    signed: Checkpoint | None
    consistent: bool
    next_sweep: int = 0  # the chunk the next checkpoint's round rechecks


async def sequence(
    pool: asyncpg.Pool, keyring: Keyring, settings: Settings, now: datetime, sweep: int = 0
) -> Round:
    """One round: append the ledger rows below the horizon (up to a batch) and fold them
    into the rollups; when a checkpoint is due,
    recheck chunk `sweep` of the stored log first, then sign. A process that does not
    get the lock does nothing this round.

    The recheck comes with the checkpoints (every CHECKPOINT_INTERVAL while entries
    arrive), not with every round: reading a chunk back each second cost the tills about
    a tenth of the redeem's CPU (bench/redeem), and a change is only ever a harm once it
    would be signed."""
    async with pool.acquire() as conn, conn.transaction():
        state = await ledger_db.state(conn)
        if not await ledger_db.try_lock_sequencer(conn):
            return Round(0, state.size, None, state.halted_reason is None, sweep)
        appended, size = await append_next(conn, state.size, BATCH, await ledger_db.horizon(conn))
        chunks = -(-size // SWEEP_CHUNK)
        consistent = state.halted_reason is None
        signed = None
        if consistent and await _checkpoint_due(conn, size, now):
            sweep = sweep % chunks
            difference = await recheck(conn, sweep * SWEEP_CHUNK, (sweep + 1) * SWEEP_CHUNK, size)
            sweep = (sweep + 1) % chunks
            if difference is not None:
                consistent = await _halt(conn, difference, now)
            else:
                signed, consistent = await sign_if_due(conn, keyring, settings, size, now)
    return Round(appended, size, signed, consistent, sweep)


async def _checkpoint_due(conn: asyncpg.Connection, size: int, now: datetime) -> bool:
    """Entries arrived since the last checkpoint (or the log shrank), and it is old enough."""
    latest = await ledger_db.latest_checkpoint(conn)
    if size == 0:
        return False
    if latest is None or size < latest.size:
        return True
    return latest.size != size and now - latest.at >= CHECKPOINT_INTERVAL


async def append_next(
    conn: asyncpg.Connection, size: int, limit: int, below: int
) -> tuple[int, int]:
    """Append up to `limit` ledger rows to a log of `size` (the caller holds the
    sequencer's lock), in the one order, and fold them into the report rollups, moving
    the watermark past them — all in the caller's transaction, so a crash leaves no gap,
    no duplicate and no row counted twice. `below`: the horizon (ledger_db.horizon),
    under which no ledger row can commit any more. Rows queued before migration 0021
    come first (already in the rollups). (How many, the new size.)"""
    queue = await ledger_db.queued(conn, limit)
    if queue:
        await _append(conn, size, [q.record for q in queue], consumed=[q.seq for q in queue])
        return len(queue), size + len(queue)
    batch = await ledger_db.unsequenced(conn, await ledger_db.watermark(conn), below, limit)
    if not batch:
        return 0, size
    records = [row.record for row in batch]
    await _append(conn, size, records, through=batch[-1].place)
    await reports_db.fold(
        conn,
        [r.id for r in records if r.kind == "redemption"],
        [r.id for r in records if r.kind == "reversal"],
    )
    return len(batch), size + len(batch)


async def _append(
    conn: asyncpg.Connection,
    size: int,
    records: list[LedgerRecord],
    *,
    consumed: list[int] | None = None,
    through: ledger_db.Watermark | None = None,
) -> None:
    entries = [
        (size + offset, record, leaf_of(size + offset, record))
        for offset, record in enumerate(records)
    ]
    frontier = await ledger_db.node_hashes(conn, merkle.nodes_of(0, size))
    made = merkle.extend(
        size, [merkle.leaf_hash(leaf.encode()) for _, _, leaf in entries], frontier
    )
    await ledger_db.append(
        conn, entries=entries, nodes=made, consumed=consumed or (), through=through
    )


async def recheck(conn: asyncpg.Connection, start: int, end: int, size: int) -> str | None:
    """What first differs in stored entries [start, end) of a log of `size`: their
    leaves against the ledger rows, their hashes and the subtrees above them."""
    end = min(end, size)
    stored = await ledger_db.stored_entries(conn, start, end)
    nodes = await ledger_db.node_hashes(conn, merkle.nodes_to_recheck(start, end, size))
    return first_difference(start, end, stored, nodes)


async def sign_if_due(
    conn: asyncpg.Connection,
    keyring: Keyring,
    settings: Settings,
    size: int,
    now: datetime,
    *,
    at_once: bool = False,
) -> tuple[Checkpoint | None, bool]:
    """Sign (size, root) if entries arrived since the last checkpoint and it is due (or
    `at_once`) — never a root that the last signed one is not a prefix of: the stored log
    must still prove itself consistent with it, else signing stops for good and says why.
    (The checkpoint signed, if any; whether the log is consistent.)"""
    latest = await ledger_db.latest_checkpoint(conn)
    if latest is not None and size < latest.size:
        return None, await _halt(
            conn, f"the log holds fewer entries than signed ({size} < {latest.size})", now
        )
    if size == 0 or (latest is not None and latest.size == size):
        return None, True
    if latest is not None and now - latest.at < CHECKPOINT_INTERVAL and not at_once:
        return None, True
    ranges = [(0, size)]
    if latest is not None:
        ranges += merkle.consistency_ranges(latest.size, size)
    hashes = await ledger_db.node_hashes(conn, merkle.nodes_for(ranges))
    try:
        root = merkle.range_hash(0, size, hashes)
        proof = [merkle.range_hash(a, b, hashes) for a, b in ranges[1:]]
    except KeyError:
        return None, await _halt(conn, "stored subtree hashes are missing", now)
    if latest is not None and not merkle.verify_consistency(
        latest.size, size, latest.root, root, proof
    ):
        reason = f"the stored log is not consistent with the checkpoint of size {latest.size}"
        return None, await _halt(conn, reason, now)
    key = await keyring.signing_key(conn)
    checkpoint = Checkpoint(size, root, now, sign_checkpoint(key, settings.issuer, size, root, now))
    await ledger_db.add_checkpoint(conn, checkpoint)
    return checkpoint, True


async def _halt(conn: asyncpg.Connection, reason: str, now: datetime) -> bool:
    log.error("ledger signing stopped: %s", reason, extra={"reason": reason})
    await ledger_db.halt(conn, reason, now)
    return False


async def run_sequencer(
    pool: asyncpg.Pool, keyring: Keyring, settings: Settings, *, clock: Clock = system_clock
) -> None:
    """The loop of one process, until cancelled; a failed round is logged and retried.
    After a full batch more may be waiting, so the next round starts at once. Each round
    reads the time from `clock`."""
    sweep = 0
    while True:
        full = False
        try:
            done = await sequence(pool, keyring, settings, clock(), sweep)
            metrics.LEDGER_CONSISTENT.set(1 if done.consistent else 0)
            metrics.LEDGER_SIZE.set(done.size)
            full, sweep = done.appended == BATCH, done.next_sweep
        except Exception:  # the database may be away; the next round tries again
            log.warning("ledger round failed", exc_info=True)
        if not full:
            await asyncio.sleep(ROUND_INTERVAL)


# --- reading the log --------------------------------------------------------------------


async def latest_checkpoint(pool: asyncpg.Pool) -> Checkpoint:
    async with pool.acquire() as conn:
        checkpoint = await ledger_db.latest_checkpoint(conn)
    if checkpoint is None:
        raise ApiError(
            "not_found", Said("The log has no signed checkpoint yet", "账本尚无签名检查点")
        )
    return checkpoint


@dataclass(frozen=True, slots=True)
class EntryPage:
    items: list[tuple[int, str]]
    next_start: int | None


async def entries(pool: asyncpg.Pool, start: int, limit: int) -> EntryPage:
    async with pool.acquire() as conn:
        rows = await ledger_db.entries(conn, start, min(limit, MAX_LIMIT) + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return EntryPage(rows, rows[-1][0] + 1 if more and rows else None)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    path: list[bytes]


async def inclusion_proof(
    pool: asyncpg.Pool, caller: Principal, index: int, size: int
) -> InclusionProof:
    """A partner caller may prove only its own entries; another's is not found."""
    async with pool.acquire() as conn:
        logged = (await ledger_db.state(conn)).size
        if not 0 <= index < size:
            raise validation_error("index", Said("must be below size", "必须小于 size"))
        if size > logged:
            raise ApiError(
                "not_found",
                Said(
                    f"The log holds {logged} entries, not {size}",
                    f"账本只有 {logged} 条记录，不足 {size} 条",
                ),
            )
        partner = await ledger_db.partner_of_entry(conn, index)
        if partner is None or not caller.can_see_partner(partner):
            raise ApiError("not_found", Said("No such entry", "没有这条记录"))
        ranges = merkle.inclusion_ranges(index, size)
        hashes = await ledger_db.node_hashes(
            conn, {merkle.Node(0, index), *merkle.nodes_for(ranges)}
        )
    path = [merkle.range_hash(a, b, hashes) for a, b in ranges]
    return InclusionProof(index, size, hashes[merkle.Node(0, index)], path)


async def consistency_proof(pool: asyncpg.Pool, old_size: int, new_size: int) -> list[bytes]:
    async with pool.acquire() as conn:
        logged = (await ledger_db.state(conn)).size
        if not 0 < old_size <= new_size:
            raise validation_error(
                "from", Said("must be at least 1 and at most `to`", "必须至少为 1，且不大于 to")
            )
        if new_size > logged:
            raise ApiError(
                "not_found",
                Said(
                    f"The log holds {logged} entries, not {new_size}",
                    f"账本只有 {logged} 条记录，不足 {new_size} 条",
                ),
            )
        ranges = merkle.consistency_ranges(old_size, new_size)
        hashes = await ledger_db.node_hashes(conn, merkle.nodes_for(ranges))
    return [merkle.range_hash(a, b, hashes) for a, b in ranges]


# --- the whole log, for the command line ------------------------------------------------

#: Entries read at a time when the whole log is walked.
WALK_CHUNK = 10_000


async def export(dsn: str, write_line: Callable[[str], object]) -> int:
    """Every entry's leaf, in index order, one `write_line` each; how many. One snapshot:
    a log that grows meanwhile is exported as it was."""
    async with connected(dsn) as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            size = (await ledger_db.state(conn)).size
            for start in range(0, size, WALK_CHUNK):
                for _, leaf in await ledger_db.entries(conn, start, WALK_CHUNK):
                    write_line(leaf)
        return size


@dataclass(frozen=True, slots=True)
class LogVerdict:
    size: int
    checkpoints: int
    difference: str | None  # the first thing that differs, None when the log holds


async def verify_stored_log(dsn: str) -> LogVerdict:
    """Recompute the whole stored log: every entry against its ledger row and every
    stored hash (`recheck`, chunk by chunk), then the tree from the leaves alone against
    every checkpoint signed, whose signatures are checked with the service's keys."""
    async with connected(dsn) as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            size = (await ledger_db.state(conn)).size
            signed = await ledger_db.checkpoints(conn)
            keys = {
                row["kid"]: verify_key_from_pem(row["public_pem"], row["kid"]).public_key
                for row in await signing_db.published(conn, timedelta(days=365_000))
            }
            for start in range(0, size, SWEEP_CHUNK):
                difference = await recheck(conn, start, start + SWEEP_CHUNK, size)
                if difference is not None:
                    return LogVerdict(size, len(signed), difference)
            difference = await _checkpoints_against_leaves(conn, signed, keys)
        return LogVerdict(size, len(signed), difference)


async def _checkpoints_against_leaves(
    conn: asyncpg.Connection, signed: list[Checkpoint], keys: Mapping[str, Ed25519PublicKey]
) -> str | None:
    hashes: dict[merkle.Node, bytes] = {}
    size, verified = 0, 0
    for checkpoint in signed:
        try:
            claims = verify_signed(checkpoint.jws, keys, CHECKPOINT_TYP)
        except ValueError as error:
            return f"the checkpoint of size {checkpoint.size}: {error}"
        if (claims["size"], claims["root"]) != (checkpoint.size, b64(checkpoint.root)):
            return f"the checkpoint of size {checkpoint.size}: its row is not what was signed"
        while size < checkpoint.size:
            for _, leaf in await ledger_db.entries(
                conn, size, min(WALK_CHUNK, checkpoint.size - size)
            ):
                hashes.update(
                    merkle.appended(size, merkle.leaf_hash(leaf.encode()), hashes.__getitem__)
                )
                size += 1
                hashes = {node: hashes[node] for node in merkle.nodes_of(0, size)}
        if merkle.range_hash(0, size, hashes) != checkpoint.root:
            return (
                f"entries {verified}–{checkpoint.size - 1}: one of them is not what the "
                f"checkpoint of size {checkpoint.size} signed"
            )
        verified = checkpoint.size
    return None
