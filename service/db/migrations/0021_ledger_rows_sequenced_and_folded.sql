-- A redeem writes less (issue 30): the log and the report rollups are fed from the ledger
-- rows themselves, off the request path.
--
-- Before: each ledger row also queued itself for the log (a trigger insert, migration
-- 0016) and moved a daily and a monthly rollup row, all in the redeem's statement. Now
-- the sequencer (service/flows/ledger.py) reads new ledger rows in one total order,
-- appends them to the log and folds them into the rollups in one transaction with its
-- watermark; reports add the rows not folded yet to the rollups
-- (service/db/reports.py), so they stay exact at every instant.
--
-- The order: each ledger row carries the id of the transaction that wrote it
-- (`xact_id`, pg_current_xact_id() as a number), and rows are taken in
-- (xact_id, redemption before reversal, id) order. Commit order is not xact_id order, so
-- the sequencer only takes rows below a horizon that no ledger writer still running can
-- go under: every transaction that writes a ledger row first takes the shared advisory
-- lock LEDGER_WRITER (service/db/ledger.py), before it has a transaction id; the
-- sequencer reads the lowest transaction id among that lock's holders (pg_locks) and
-- the next id to be assigned, then, in a later statement, the rows below the lower of
-- the two. Any writer below it had its id, hence the lock, when the holders were read:
-- it had ended by then, and its rows are all visible to the later statement. So no row
-- can commit below the watermark after the sequencer passed it, and the order of rows
-- already appended never changes (docs/ledger.md, "The order").

LOCK TABLE redemptions, reversals IN SHARE ROW EXCLUSIVE MODE;

-- Rows written before this migration keep xact_id NULL: they are logged, or queued in
-- ledger_queue, which the sequencer drains first, and already counted in the rollups.
ALTER TABLE redemptions ADD COLUMN xact_id bigint;
ALTER TABLE redemptions ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id()::text::bigint;
ALTER TABLE reversals ADD COLUMN xact_id bigint;
ALTER TABLE reversals ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id()::text::bigint;
-- The sequencer's reading order and the reports' "not folded yet".
CREATE INDEX redemptions_sequence_idx ON redemptions (xact_id, id) WHERE xact_id IS NOT NULL;
CREATE INDEX reversals_sequence_idx ON reversals (xact_id, id) WHERE xact_id IS NOT NULL;

-- Where the sequencer is: every ledger row at or below this key is in the log and in the
-- rollups; every row above it is in neither. One row, moved with each batch.
CREATE TABLE ledger_watermark (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    xact_id bigint NOT NULL,
    kind    smallint NOT NULL CHECK (kind IN (0, 1)),  -- 0 redemption, 1 reversal
    id      text NOT NULL
);
INSERT INTO ledger_watermark (xact_id, kind, id) VALUES (0, 0, '');

-- The queue is no longer filled: what it holds now is appended first.
DROP TRIGGER redemptions_queue_for_the_log ON redemptions;
DROP TRIGGER reversals_queue_for_the_log ON reversals;
DROP FUNCTION youdai_queue_for_the_log();
