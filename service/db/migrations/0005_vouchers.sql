-- Holder sign-in sessions and vouchers.

-- Holder session tokens are random secrets stored only as SHA-256 (like API keys).
CREATE TABLE holder_sessions (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    holder_id  text NOT NULL REFERENCES holders (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX holder_sessions_holder_idx ON holder_sessions (holder_id);
CREATE INDEX holder_sessions_expiry_idx ON holder_sessions (expires_at);

-- One holder's right to one offer.
CREATE TABLE vouchers (
    id          text PRIMARY KEY,
    holder_id   text NOT NULL REFERENCES holders (id),
    offer_id    text NOT NULL REFERENCES offers (id),
    partner_id  text NOT NULL REFERENCES partners (id),
    status      text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'used_up', 'expired', 'revoked')),
    uses_total  integer NOT NULL CHECK (uses_total >= 1),
    -- Rule 1: never used more times than allowed, enforced here as well as by the UPDATE.
    uses_left   integer NOT NULL CHECK (uses_left >= 0 AND uses_left <= uses_total),
    expires_at  timestamptz NOT NULL,
    issued_by   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- At most one active voucher per holder and offer: a second claim finds the first.
CREATE UNIQUE INDEX vouchers_one_active_per_holder_offer
    ON vouchers (holder_id, offer_id) WHERE status = 'active';
CREATE INDEX vouchers_holder_idx ON vouchers (holder_id, id);
CREATE INDEX vouchers_offer_idx ON vouchers (offer_id, id);
