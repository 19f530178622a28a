-- A redemption keeps its own Idempotency-Key (issue 30): the key it was asked with, the
-- SHA-256 of the request and the voucher's uses left as answered are columns of its
-- ledger row, and the rest of the answer is the row itself. A redeem no longer writes an
-- idempotency_keys row (a heap row, two index entries and a JSON copy of the answer);
-- only refusals are kept there, for replay.
--
-- A key is answered again for 24 hours (IDEMPOTENCY_RETENTION); the ledger keeps it
-- since it keeps everything. No unique index: a key may come again after 24 hours as a
-- new request. "Once per key" is held by the key's advisory lock, which the redeem takes
-- in its first statement and keeps until it commits, and by its write, which refuses to
-- redeem when a live answer to the key is there (service/db/redemptions.py).
ALTER TABLE redemptions
    ADD COLUMN idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    ADD COLUMN request_hash bytea,
    ADD COLUMN uses_left integer,
    ADD CONSTRAINT redemptions_key_with_hash
        CHECK ((idempotency_key IS NULL) = (request_hash IS NULL));
CREATE INDEX redemptions_idempotency_idx ON redemptions (partner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
