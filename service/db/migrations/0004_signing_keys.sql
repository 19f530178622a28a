-- Ed25519 keys that sign voucher tokens. Held here so that every process and machine
-- signs with the same active key and publishes the same set; `youdai rotate-signing-key`
-- retires the active key and activates a new one in one transaction.

CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    private_pem  text NOT NULL,
    public_pem   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz
);

-- At most one active (unretired) key at any time.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;
