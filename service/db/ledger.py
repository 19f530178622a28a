"""SQL of the tamper-evident log (migrations 0016, 0021): the ledger rows not yet in the
log, in their one order, and the watermark below which every row is; the entries with
their leaf text, the complete subtrees' hashes, the signed checkpoints, and why signing
stopped, if it did."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from service.domain.ledger import Checkpoint, LedgerRecord, StoredEntry
from service.domain.merkle import Node

#: Arbitrary but fixed: the advisory lock of the one process that appends at a time.
SEQUENCER_LOCK = 7_201_309_116
#: The shared advisory lock (two int4 keys) that every transaction writing a ledger row
#: takes before it has a transaction id (migration 0021): the sequencer reads its holders
#: to know below which transaction id no ledger row can still be committed.
LEDGER_WRITER = (7_201, 309_117)


async def enter_as_ledger_writer(conn: asyncpg.Connection) -> None:
    """Take LEDGER_WRITER for this transaction: before its first write (see `horizon`)."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1, $2)", *LEDGER_WRITER)


async def try_lock_sequencer(conn: asyncpg.Connection) -> bool:
    """The sequencer's lock for this transaction, if no other process holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SEQUENCER_LOCK))


async def lock_sequencer(conn: asyncpg.Connection) -> None:
    """The sequencer's lock for this session, waiting for the round that holds it: taken
    before a transaction starts, so that its snapshot sees every round that ended."""
    await conn.execute("SELECT pg_advisory_lock($1)", SEQUENCER_LOCK)


async def unlock_sequencer(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", SEQUENCER_LOCK)


#: ledger_spans' unit (migration 0025): the entries made in one quarter hour of UTC.
QUARTER = timedelta(minutes=15)
#: The quarter hour of an entry, as ledger_spans.quarter counts it (migration 0025's
#: trigger keeps the table as entries are appended).
ENTRY_QUARTER = f"floor(extract(epoch FROM created_at) / {QUARTER.seconds})::bigint"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The quarter hours wholly in the period ($3 to $4, from ledger_spans) and its ragged
#: ends ([$1, $5) and [$6, $2), from the entries: empty where the period starts and ends
#: on a quarter hour). The ends overlap when no quarter hour is whole: min and max do not
#: mind. `log_index + 0`: on the bare column PostgreSQL answers min and max by walking
#: the primary key until an entry's created_at falls in the range, which is the walk
#: through the whole log that this table avoids.
_INDEX_SPAN = """
    SELECT min(first) AS first, max(last) AS last FROM (
        SELECT min(first_index) AS first, max(last_index) AS last FROM ledger_spans
        WHERE quarter >= $3 AND quarter < $4
        UNION ALL
        SELECT min(log_index + 0), max(log_index + 0) FROM ledger_entries
        WHERE created_at >= $1 AND created_at < $5
        UNION ALL
        SELECT min(log_index + 0), max(log_index + 0) FROM ledger_entries
        WHERE created_at >= $6 AND created_at < $2
    ) parts
"""


async def index_span(
    conn: asyncpg.Connection, start: datetime, end: datetime
) -> tuple[int | None, int | None]:
    """The first and last log index of the entries made in [start, end)."""
    first_whole = -((_EPOCH - start) // QUARTER)  # the first quarter hour that starts in it
    end_whole = (end - _EPOCH) // QUARTER  # the quarter hour that `end` falls in
    row = await conn.fetchrow(
        _INDEX_SPAN,
        start,
        end,
        first_whole,
        end_whole,
        min(_EPOCH + first_whole * QUARTER, end),
        max(_EPOCH + end_whole * QUARTER, start),
    )
    return row["first"], row["last"]


@dataclass(frozen=True, slots=True)
class LogState:
    size: int
    halted_reason: str | None  # why signing stopped, if it did


async def state(conn: asyncpg.Connection) -> LogState:
    row = await conn.fetchrow(
        """
        SELECT (SELECT COALESCE(max(log_index) + 1, 0) FROM ledger_entries) AS size,
               (SELECT reason FROM ledger_halts ORDER BY halted_at LIMIT 1) AS halted_reason
        """
    )
    return LogState(**row)


@dataclass(frozen=True, slots=True)
class Queued:
    seq: int
    record: LedgerRecord


@dataclass(frozen=True, slots=True)
class Watermark:
    """A place in the ledger's one order: (transaction id, 0 redemption | 1 reversal, id).
    Every row at or below the stored watermark is in the log and in the rollups."""

    xact_id: int
    kind: int
    id: str


#: A ledger row as the log records it, from the redemption or reversal whose id is
#: `{source}.entry_id` (a reversal's voucher, offer and partner are its redemption's).
_RECORD = """
    CASE WHEN x.id IS NULL THEN 'redemption' ELSE 'reversal' END AS kind,
    x.redemption_id, r.voucher_id, r.offer_id, r.partner_id, r.holder_category,
    COALESCE(x.purchase_amount, r.purchase_amount) AS purchase_amount,
    COALESCE(x.discount_amount, r.discount_amount) AS discount_amount,
    COALESCE(x.created_at, r.created_at) AS created_at,
    CASE WHEN x.id IS NULL THEN r.offline_at END AS offline_at,
    CASE WHEN x.id IS NULL THEN r.conflict END AS conflict
"""
_RECORD_JOIN = """
    LEFT JOIN reversals x ON x.id = {source}.entry_id
    LEFT JOIN redemptions r ON r.id = COALESCE(x.redemption_id, {source}.entry_id)
"""


def _record(row: asyncpg.Record) -> LedgerRecord | None:
    """None when the ledger row is gone (only a hand changing the database does that)."""
    if row["voucher_id"] is None:
        return None
    return LedgerRecord(
        id=row["entry_id"],
        kind=row["kind"],
        redemption_id=row["redemption_id"],
        voucher_id=row["voucher_id"],
        offer_id=row["offer_id"],
        partner_id=row["partner_id"],
        holder_category=row["holder_category"],
        purchase_amount=row["purchase_amount"],
        discount_amount=row["discount_amount"],
        created_at=row["created_at"],
        offline_at=row["offline_at"],
        conflict=row["conflict"],
    )


async def queued(conn: asyncpg.Connection, limit: int) -> list[Queued]:
    """The oldest entries left in the queue of migration 0016 (rows written before 0021),
    in queue order; they are appended before any other. No trigger fills it any more."""
    rows = await conn.fetch(
        f"""
        SELECT q.seq, q.entry_id, {_RECORD}
        FROM ledger_queue q {_RECORD_JOIN.format(source="q")}
        ORDER BY q.seq
        LIMIT $1
        """,
        limit,
    )
    queue = []
    for row in rows:
        record = _record(row)
        assert record is not None, "a queued entry's ledger row is written with it"
        queue.append(Queued(row["seq"], record))
    return queue


_HORIZON = """
    SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next,
           array(
               SELECT t.transactionid::text::bigint
               FROM pg_locks a JOIN pg_locks t
                 ON t.virtualtransaction = a.virtualtransaction
                AND t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted
               WHERE a.locktype = 'advisory' AND a.granted
                 AND a.database = (SELECT oid FROM pg_database
                                   WHERE datname = current_database())
                 AND a.classid = $1::oid AND a.objid = $2::oid AND a.objsubid = 2
           ) AS writers
"""


async def horizon(conn: asyncpg.Connection) -> int:
    """The transaction id below which no ledger row can commit any more, for rows read
    in a snapshot taken by a LATER statement (migration 0021, docs/ledger.md): the next
    one of a read-committed transaction, or the first of a repeatable-read one begun
    after this.

    The lower of: the next transaction id as this statement starts, and the lowest id
    among the transactions holding LEDGER_WRITER now. A writer below that had its id
    before this statement, and took LEDGER_WRITER before its id: if it still ran, it
    would be among the holders. So it has ended, and a later snapshot sees all its rows.
    (pg_locks shows 32-bit ids: each is widened with the epoch of `next`.)"""
    row = await conn.fetchrow(_HORIZON, *LEDGER_WRITER)
    nxt: int = row["next"]
    lowest = nxt
    for low32 in row["writers"]:
        full = (nxt & ~0xFFFFFFFF) | low32
        if full >= nxt:  # assigned before the epoch turned
            full -= 1 << 32
        lowest = min(lowest, full)
    return lowest


#: The watermark as one row, the very start when none is stored (an emptied database).
WATERMARK = """(SELECT coalesce(max(xact_id), 0) AS xact_id, coalesce(max(kind), 0) AS kind,
        coalesce(max(id), '') AS id FROM ledger_watermark)"""


async def watermark(conn: asyncpg.Connection) -> Watermark:
    row = await conn.fetchrow(f"SELECT * FROM {WATERMARK} w")
    return Watermark(row["xact_id"], row["kind"], row["id"])


@dataclass(frozen=True, slots=True)
class Sequenced:
    place: Watermark
    record: LedgerRecord


#: The next ledger rows after a watermark, in the one order, below a horizon. Each table
#: is read along its (xact_id, id) index from its own bound: $1, $2 for redemptions and
#: $3, $4 for reversals (see `bounds`); $5 the horizon, $6 how many.
_NEXT = f"""
    WITH next AS (
        (SELECT r.xact_id, 0 AS rank, r.id AS entry_id FROM redemptions r
         WHERE (r.xact_id, r.id) > ($1, $2) AND r.xact_id < $5
         ORDER BY r.xact_id, r.id LIMIT $6)
        UNION ALL
        (SELECT x.xact_id, 1, x.id FROM reversals x
         WHERE (x.xact_id, x.id) > ($3, $4) AND x.xact_id < $5
         ORDER BY x.xact_id, x.id LIMIT $6)
        ORDER BY 1, 2, 3 LIMIT $6
    )
    SELECT n.xact_id, n.rank, n.entry_id, {_RECORD}
    FROM next n {_RECORD_JOIN.format(source="n")}
    ORDER BY n.xact_id, n.rank, n.entry_id
"""


def bounds(after: Watermark) -> tuple[int, str, int, str]:
    """Each table's (xact_id, id) lower bound, exclusive, for the rows after `after`:
    within one transaction its redemptions come before its reversals."""
    if after.kind == 0:
        return after.xact_id, after.id, after.xact_id, ""
    return after.xact_id + 1, "", after.xact_id, after.id


async def unsequenced(
    conn: asyncpg.Connection, after: Watermark, below: int, limit: int
) -> list[Sequenced]:
    """Up to `limit` ledger rows after `after` whose transaction id is below `below`, in
    the one order (a reversal's transaction always starts after its redemption's commit,
    so it comes later)."""
    rows = await conn.fetch(_NEXT, *bounds(after), below, limit)
    found = []
    for row in rows:
        record = _record(row)
        assert record is not None, "a ledger row read now exists"
        found.append(Sequenced(Watermark(row["xact_id"], row["rank"], row["entry_id"]), record))
    return found


async def stored_entries(conn: asyncpg.Connection, start: int, end: int) -> list[StoredEntry]:
    """Entries [start, end) as stored, each with the ledger row it was made from."""
    rows = await conn.fetch(
        f"""
        SELECT e.log_index, e.leaf, e.entry_id, {_RECORD}
        FROM ledger_entries e {_RECORD_JOIN.format(source="e")}
        WHERE e.log_index >= $1 AND e.log_index < $2
        ORDER BY e.log_index
        """,
        start,
        end,
    )
    return [StoredEntry(row["log_index"], row["leaf"], _record(row)) for row in rows]


async def node_hashes(conn: asyncpg.Connection, nodes: Iterable[Node]) -> dict[Node, bytes]:
    wanted = list(nodes)
    rows = await conn.fetch(
        """
        SELECT n.level, n.idx, n.hash
        FROM unnest($1::smallint[], $2::bigint[]) AS w (level, idx)
        JOIN ledger_nodes n ON n.level = w.level AND n.idx = w.idx
        """,
        [node.level for node in wanted],
        [node.index for node in wanted],
    )
    return {Node(row["level"], row["idx"]): row["hash"] for row in rows}


async def append(
    conn: asyncpg.Connection,
    *,
    entries: Sequence[tuple[int, LedgerRecord, str]],
    nodes: Sequence[tuple[Node, bytes]],
    consumed: Sequence[int] = (),
    through: Watermark | None = None,
) -> None:
    """Store entries (index, record, leaf) and the subtrees they complete, and take them
    off the queue (`consumed`) or move the watermark `through` the last of them: all in
    the caller's transaction."""
    await conn.execute(
        """
        INSERT INTO ledger_entries (log_index, entry_id, leaf, created_at)
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[])
        """,
        [index for index, _, _ in entries],
        [record.id for _, record, _ in entries],
        [leaf for _, _, leaf in entries],
        [record.created_at for _, record, _ in entries],
    )
    await conn.execute(
        """
        INSERT INTO ledger_nodes (level, idx, hash)
        SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
        """,
        [node.level for node, _ in nodes],
        [node.index for node, _ in nodes],
        [digest for _, digest in nodes],
    )
    if consumed:
        await conn.execute("DELETE FROM ledger_queue WHERE seq = ANY($1::bigint[])", list(consumed))
    if through is not None:
        await conn.execute(
            """
            INSERT INTO ledger_watermark (xact_id, kind, id) VALUES ($1, $2, $3)
            ON CONFLICT (one) DO UPDATE
            SET xact_id = EXCLUDED.xact_id, kind = EXCLUDED.kind, id = EXCLUDED.id
            """,
            through.xact_id,
            through.kind,
            through.id,
        )


async def halt(conn: asyncpg.Connection, reason: str, now: datetime) -> None:
    await conn.execute("INSERT INTO ledger_halts (halted_at, reason) VALUES ($1, $2)", now, reason)


def _checkpoint(row: asyncpg.Record | None) -> Checkpoint | None:
    if row is None:
        return None
    return Checkpoint(size=row["size"], root=row["root"], at=row["signed_at"], jws=row["jws"])


async def latest_checkpoint(conn: asyncpg.Connection) -> Checkpoint | None:
    return _checkpoint(
        await conn.fetchrow(
            "SELECT size, root, signed_at, jws FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
        )
    )


async def checkpoints(conn: asyncpg.Connection) -> list[Checkpoint]:
    rows = await conn.fetch(
        "SELECT size, root, signed_at, jws FROM ledger_checkpoints ORDER BY size"
    )
    return [checkpoint for row in rows if (checkpoint := _checkpoint(row)) is not None]


async def add_checkpoint(conn: asyncpg.Connection, checkpoint: Checkpoint) -> None:
    await conn.execute(
        "INSERT INTO ledger_checkpoints (size, root, signed_at, jws) VALUES ($1, $2, $3, $4)",
        checkpoint.size,
        checkpoint.root,
        checkpoint.at,
        checkpoint.jws,
    )


async def entries(conn: asyncpg.Connection, start: int, limit: int) -> list[tuple[int, str]]:
    rows = await conn.fetch(
        """
        SELECT log_index, leaf FROM ledger_entries
        WHERE log_index >= $1 ORDER BY log_index LIMIT $2
        """,
        start,
        limit,
    )
    return [(row["log_index"], row["leaf"]) for row in rows]


async def partner_of_entry(conn: asyncpg.Connection, index: int) -> str | None:
    """The partner an entry belongs to (rule 5 for a partner's inclusion proofs)."""
    value = await conn.fetchval(
        "SELECT leaf::jsonb ->> 'partner_id' FROM ledger_entries WHERE log_index = $1", index
    )
    return None if value is None else str(value)
