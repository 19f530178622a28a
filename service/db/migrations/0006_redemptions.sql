-- The redemption ledger: redemptions and reversals are appended, never updated or
-- deleted. Counters that enforce limits live beside it and change in the same
-- transaction as each ledger row, so they can never drift from it.

-- Uses of one offer by one holder in one calendar period (rule 1: holder limits).
CREATE TABLE holder_offer_usage (
    holder_id    text NOT NULL REFERENCES holders (id),
    offer_id     text NOT NULL REFERENCES offers (id),
    period_start timestamptz NOT NULL,
    uses         integer NOT NULL CHECK (uses >= 0),
    PRIMARY KEY (holder_id, offer_id, period_start)
);

CREATE TABLE redemptions (
    id                  text PRIMARY KEY,
    voucher_id          text NOT NULL REFERENCES vouchers (id),
    offer_id            text NOT NULL REFERENCES offers (id),
    partner_id          text NOT NULL REFERENCES partners (id),
    -- Who was served stays inside the database: never in an answer, a log or a report.
    holder_id           text NOT NULL REFERENCES holders (id),
    holder_category     text NOT NULL,
    scanner_key_id      text NOT NULL REFERENCES api_keys (id),
    purchase_amount     bigint NOT NULL CHECK (purchase_amount > 0),
    discount_amount     bigint NOT NULL CHECK (discount_amount >= 0),
    payable_amount      bigint NOT NULL CHECK (payable_amount >= 0 AND payable_amount <= purchase_amount),
    budget_cost         bigint NOT NULL CHECK (budget_cost >= 0),
    holder_period_start timestamptz,
    reference           text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    local_day           date NOT NULL
);
CREATE INDEX redemptions_partner_idx ON redemptions (partner_id, id);
CREATE INDEX redemptions_offer_idx ON redemptions (offer_id, id);
CREATE INDEX redemptions_voucher_idx ON redemptions (voucher_id);
CREATE INDEX redemptions_created_idx ON redemptions (created_at);

-- A refund: its own ledger row pointing at the redemption; the UNIQUE applies it once.
CREATE TABLE reversals (
    id              text PRIMARY KEY,
    redemption_id   text NOT NULL UNIQUE REFERENCES redemptions (id),
    offer_id        text NOT NULL REFERENCES offers (id),
    partner_id      text NOT NULL REFERENCES partners (id),
    holder_category text NOT NULL,
    purchase_amount bigint NOT NULL,
    discount_amount bigint NOT NULL,
    reason          text NOT NULL DEFAULT '',
    actor_id        text NOT NULL,
    actor_role      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    local_day       date NOT NULL
);
CREATE INDEX reversals_partner_idx ON reversals (partner_id, id);

CREATE FUNCTION youdai_ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the % ledger is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER redemptions_append_only BEFORE UPDATE OR DELETE ON redemptions
    FOR EACH ROW EXECUTE FUNCTION youdai_ledger_is_append_only();
CREATE TRIGGER reversals_append_only BEFORE UPDATE OR DELETE ON reversals
    FOR EACH ROW EXECUTE FUNCTION youdai_ledger_is_append_only();

-- Totals per partner, offer, holder category and local day, kept in the same transaction
-- as each ledger row (rule 4): reports read this instead of scanning the ledger.
-- A reversal counts on the day it happens. Amounts are net of reversals.
CREATE TABLE discount_rollup (
    partner_id      text NOT NULL,
    offer_id        text NOT NULL,
    holder_category text NOT NULL,
    day             date NOT NULL,
    redemptions     bigint NOT NULL DEFAULT 0,
    reversals       bigint NOT NULL DEFAULT 0,
    purchase_total  bigint NOT NULL DEFAULT 0,
    discount_total  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, partner_id, offer_id, holder_category)
);
CREATE INDEX discount_rollup_partner_idx ON discount_rollup (partner_id, day);

-- Redemption requests by Idempotency-Key, scoped to the scanner's partner, kept 24 h.
-- The row commits with the redemption it answers (or alone, for a refusal).
CREATE TABLE idempotency_keys (
    partner_id      text NOT NULL REFERENCES partners (id),
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL,
    response_status integer NOT NULL,
    response_body   jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
