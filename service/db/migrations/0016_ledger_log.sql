-- The tamper-evident log of the ledger (docs/ledger.md): every redemption and reversal becomes a
-- leaf of an RFC 9162 Merkle tree, in one total order that never changes.
--
-- A ledger row is queued by a trigger in the transaction that writes it, so no path can
-- record a redemption the log misses; the sequencer (service/flows/ledger.py), one process
-- at a time under an advisory lock, takes queued rows in queue order, gives them the next
-- log indexes, stores each leaf and every complete subtree's hash, and removes them from
-- the queue — in one transaction, so a crash leaves neither a gap nor a duplicate.

CREATE TABLE ledger_queue (
    seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id text NOT NULL UNIQUE  -- a redemption's or a reversal's id
);

-- The leaf is the exact canonical JSON text that was hashed; created_at is the ledger
-- row's, beside it so a period's entries are found by index (the annual statement).
CREATE TABLE ledger_entries (
    log_index   bigint PRIMARY KEY CHECK (log_index >= 0),
    entry_id    text NOT NULL UNIQUE,
    leaf        text NOT NULL,
    created_at  timestamptz NOT NULL,
    appended_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_created_idx ON ledger_entries (created_at, log_index);

-- The hash of each complete subtree: leaves [idx·2^level, (idx+1)·2^level). Level 0 holds
-- the leaf hashes. A root or a proof reads O(log² n) of these, never the whole tree.
CREATE TABLE ledger_nodes (
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 62),
    idx   bigint NOT NULL CHECK (idx >= 0),
    hash  bytea NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- What the service signed: the size and root of the log at a moment, as a compact JWS.
CREATE TABLE ledger_checkpoints (
    size      bigint PRIMARY KEY CHECK (size > 0),
    root      bytea NOT NULL CHECK (octet_length(root) = 32),
    signed_at timestamptz NOT NULL,
    jws       text NOT NULL
);

-- Why signing stopped: the stored log no longer proved itself consistent with what was
-- signed before. Once a row is here, no checkpoint is signed again.
CREATE TABLE ledger_halts (
    halted_at timestamptz NOT NULL,
    reason    text NOT NULL
);

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION youdai_ledger_is_append_only();
CREATE TRIGGER ledger_nodes_append_only BEFORE UPDATE OR DELETE ON ledger_nodes
    FOR EACH ROW EXECUTE FUNCTION youdai_ledger_is_append_only();
CREATE TRIGGER ledger_checkpoints_append_only BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION youdai_ledger_is_append_only();

CREATE FUNCTION youdai_queue_for_the_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_queue (entry_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER redemptions_queue_for_the_log AFTER INSERT ON redemptions
    FOR EACH ROW EXECUTE FUNCTION youdai_queue_for_the_log();
CREATE TRIGGER reversals_queue_for_the_log AFTER INSERT ON reversals
    FOR EACH ROW EXECUTE FUNCTION youdai_queue_for_the_log();

-- What was recorded before the log existed joins it first, in the order it happened
-- (a reversal always after its redemption).
INSERT INTO ledger_queue (entry_id)
SELECT id FROM (
    SELECT id, 'redemption' AS kind, created_at FROM redemptions
    UNION ALL
    SELECT id, 'reversal', created_at FROM reversals
) recorded
ORDER BY created_at, kind, id;
