-- Voucher codes (docs/product.md), the scanners' unknown-code counter, and refused redemptions.

-- The voucher code minted with a voucher's newest token: 18 random digits, stored only
-- as SHA-256 (read access to the database gives no live code), valid until that token
-- expires. One row per voucher, replaced at every minting: at most one live code each.
CREATE TABLE voucher_codes (
    voucher_id text PRIMARY KEY REFERENCES vouchers (id),
    code_hash  bytea NOT NULL UNIQUE CHECK (length(code_hash) = 32),
    expires_at timestamptz NOT NULL
);

-- Unknown codes sent by one scanner key in one calendar minute: 20 in a minute refuse
-- that key's codes for the rest of it (too_many_attempts). Old minutes are forgotten by
-- housekeeping.
CREATE TABLE scanner_code_misses (
    scanner_key_id text NOT NULL,
    minute         timestamptz NOT NULL,
    misses         integer NOT NULL CHECK (misses > 0),
    PRIMARY KEY (scanner_key_id, minute)
);

-- Redemptions refused for a voucher the service knows, as pretix keeps failed scans:
-- when, which offer, which till key, which problem. Never anything about the holder.
CREATE TABLE redemption_refusals (
    id             text PRIMARY KEY,
    partner_id     text NOT NULL REFERENCES partners (id),
    offer_id       text NOT NULL REFERENCES offers (id),
    scanner_key_id text NOT NULL,
    code           text NOT NULL,
    stage          text NOT NULL CHECK (stage IN ('preview', 'redeem')),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX redemption_refusals_partner_idx ON redemption_refusals (partner_id, id);
CREATE INDEX redemption_refusals_created_idx ON redemption_refusals (created_at);

-- A till lists its own key's redemptions of today (to reverse any of them).
CREATE INDEX redemptions_scanner_key_idx ON redemptions (scanner_key_id, created_at);

-- A service offer may be redeemed without a purchase amount (docs/api.md: left out, it is 0).
ALTER TABLE redemptions DROP CONSTRAINT redemptions_purchase_amount_check;
ALTER TABLE redemptions ADD CONSTRAINT redemptions_purchase_amount_check
    CHECK (purchase_amount >= 0);
