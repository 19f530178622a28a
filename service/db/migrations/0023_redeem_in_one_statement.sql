-- The redeem's write is one statement, its own transaction (service/db/redemptions.py):
-- two round trips a redemption (the read, the write) instead of four (BEGIN, the read,
-- the write, COMMIT), and no row lock held across a round trip to the server.
--
-- youdai_redeem_gate: what the write does first. It makes the transaction a ledger writer
-- (migration 0021) before the transaction has an id, takes the Idempotency-Key's lock for
-- the transaction — 'in_use' if another request holds it — and then looks for a live
-- answer to the key: 'answered' if there is one. A VOLATILE function's queries each take
-- a new snapshot, so this one sees a request with the key that committed after the
-- statement began, just before the lock was free; the statement's own snapshot would not.
CREATE FUNCTION youdai_redeem_gate(
    lock_id bigint, writer_a integer, writer_b integer, in_partner text, in_key text,
    live_since timestamptz
) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(writer_a, writer_b);
    IF NOT pg_try_advisory_xact_lock(lock_id) THEN
        RETURN 'in_use';
    END IF;
    IF EXISTS (SELECT 1 FROM redemptions
               WHERE partner_id = in_partner AND idempotency_key = in_key
                 AND created_at > live_since)
       OR EXISTS (SELECT 1 FROM idempotency_keys
                  WHERE partner_id = in_partner AND key = in_key AND created_at > live_since)
    THEN
        RETURN 'answered';
    END IF;
    RETURN 'free';
END $$;

-- All of the write or nothing: each counter moves only within its limit, in order
-- (voucher, holder's period count, offer), so when another request reached the count's
-- or the offer's limit first, the voucher's use is already taken and no ledger row
-- follows. Then nothing of it may stay: this error undoes the statement, and the flow
-- reads and judges again (the read names the limit reached).
CREATE FUNCTION youdai_written_whole(applied boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT applied THEN
        RAISE EXCEPTION 'youdai: a redemption was written in part, and undone'
            USING ERRCODE = 'YD001';
    END IF;
    RETURN true;
END $$;
