-- A voucher code is valid exactly as long as its token (docs/product.md), judged as the token is.
--
-- issued_at is the token's `iat` beside its `exp` (expires_at): the service refuses a code
-- whose lifetime exceeds the configured YOUDAI_TOKEN_TTL, as it refuses such a token, so
-- a shorter TTL after a restart shortens the codes already shown too. Codes minted before
-- this migration have no known lifetime: they are dropped (opening the voucher again
-- mints a new one; their tokens are unaffected).
DELETE FROM voucher_codes;
ALTER TABLE voucher_codes ADD COLUMN issued_at timestamptz NOT NULL;
ALTER TABLE voucher_codes ADD CONSTRAINT voucher_codes_lifetime_check
    CHECK (issued_at <= expires_at);

-- Unknown codes sent by all of one partner's scanner keys in one calendar minute: a
-- partner cannot multiply the per-key limit by issuing itself more keys
-- (service.domain.codes.PARTNER_MISS_LIMIT). Forgotten by housekeeping like the per-key
-- counter.
CREATE TABLE partner_code_misses (
    partner_id text NOT NULL,
    minute     timestamptz NOT NULL,
    misses     integer NOT NULL CHECK (misses > 0),
    PRIMARY KEY (partner_id, minute)
);
