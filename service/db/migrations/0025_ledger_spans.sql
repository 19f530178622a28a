-- The signed statement names the first and last log index of the entries made in its
-- period (db/ledger.py: `index_span`). Read from the entries, that was a walk of every
-- entry outside the period or inside it: over ten million entries, 1.1 s for a month in
-- the middle, with the sequencer's lock held. No one probe of an index finds them:
-- `created_at` is not monotone in the log's order (a transaction that began earlier may
-- commit later). So this table keeps, for each quarter hour of UTC in which entries
-- were made, the first and last index among them, and a trigger keeps it in the
-- statement that appends them, whoever appends (a process of the previous version during
-- a rolling upgrade, too). A period reads its whole quarter hours here (every time
-- zone's midnight today falls on one) and its ragged ends, if any, from the entries.
CREATE TABLE ledger_spans (
    quarter bigint PRIMARY KEY,  -- floor(epoch seconds / 900) of the entries' created_at
    first_index bigint NOT NULL,
    last_index bigint NOT NULL,
    CHECK (0 <= first_index AND first_index <= last_index)
);

CREATE FUNCTION youdai_ledger_spans_extend() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_spans AS s (quarter, first_index, last_index)
    SELECT floor(extract(epoch FROM created_at) / 900)::bigint, min(log_index),
           max(log_index)
    FROM added GROUP BY 1
    ON CONFLICT (quarter) DO UPDATE
    SET first_index = least(s.first_index, EXCLUDED.first_index),
        last_index = greatest(s.last_index, EXCLUDED.last_index);
    RETURN NULL;
END
$$;

CREATE TRIGGER ledger_entries_spans AFTER INSERT ON ledger_entries
REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION youdai_ledger_spans_extend();

-- The entries logged before this migration.
INSERT INTO ledger_spans (quarter, first_index, last_index)
SELECT floor(extract(epoch FROM created_at) / 900)::bigint, min(log_index), max(log_index)
FROM ledger_entries
GROUP BY 1;
