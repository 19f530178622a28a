-- Issue 14. Private signing keys are kept sealed (AES-256-GCM under YOUDAI_SECRET_KEY,
-- service/sealing.py) instead of as plain PEM: read access to the database alone must
-- not be enough to mint a voucher token (docs/product.md). SQL cannot seal, so the plain rows
-- left by 0004 are sealed by the first `youdai migrate`/`serve` after this file
-- (service/keyring.py seal_plain_keys), which then clears private_pem.

ALTER TABLE signing_keys ALTER COLUMN private_pem DROP NOT NULL;
ALTER TABLE signing_keys ADD COLUMN private_sealed bytea;
-- Exactly one of the two forms is present for every key.
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_private_once
    CHECK ((private_pem IS NULL) <> (private_sealed IS NULL));

-- Failed sign-ins per client address, of any kind (holder card + PIN, staff email +
-- password), counted in a fixed window: YOUDAI_SIGNIN_ADDRESS_LIMIT failures within the
-- window answer too_many_attempts until it ends (docs/api.md). Rows are forgotten once
-- their window is over (housekeeping in every process).
CREATE TABLE sign_in_address_failures (
    address           text PRIMARY KEY,
    failures          integer NOT NULL CHECK (failures > 0),
    window_started_at timestamptz NOT NULL
);
