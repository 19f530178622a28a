-- The signed statement names the first and last log index of the entries made in its
-- period (db/ledger.py: `index_span`). Read from the entries, that was a walk of every
-- entry outside the period or inside it: over ten million entries, 1.1 s for a month in
-- the middle, with the sequencer's lock held. No one probe of an index finds them:
-- `created_at` is not monotone in the log's order (a transaction that began earlier may
-- commit later). So the sequencer keeps, for each quarter hour of UTC in which entries
-- were made, the first and last index among them, in the transaction that appends them.
-- A period reads its whole quarter hours here (every time zone's midnight today falls
-- on one) and its ragged ends, if any, from the entries.
CREATE TABLE ledger_spans (
    quarter bigint PRIMARY KEY,  -- floor(epoch seconds / 900) of the entries' created_at
    first_index bigint NOT NULL,
    last_index bigint NOT NULL,
    CHECK (0 <= first_index AND first_index <= last_index)
);

INSERT INTO ledger_spans (quarter, first_index, last_index)
SELECT floor(extract(epoch FROM created_at) / 900)::bigint, min(log_index), max(log_index)
FROM ledger_entries
GROUP BY 1;
