-- Card holders (优待证). Minimal personal data: a display name and a region, no ID number.

CREATE TABLE holders (
    id           text PRIMARY KEY,
    -- Stored in upper case so that the same card typed in another case is the same card.
    card_number  text NOT NULL UNIQUE CHECK (card_number ~ '^[A-Z0-9-]{4,32}$'),
    category     text NOT NULL CHECK (category IN
                   ('veteran', 'disabled_veteran', 'martyr_family', 'military_family', 'other')),
    display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    region       text NOT NULL DEFAULT '' CHECK (length(region) <= 100),
    valid_until  date NOT NULL,
    status       text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'suspended', 'revoked')),
    -- Only an argon2id hash (PHC string) of the PIN, never the PIN or a fast hash of it.
    pin_hash     text NOT NULL CHECK (pin_hash LIKE '$argon2id$%'),
    -- Sign-in lockout (docs/api.md: five wrong PINs in 15 minutes lock the card for 15 minutes).
    failed_pin_count             integer NOT NULL DEFAULT 0 CHECK (failed_pin_count >= 0),
    failed_pin_window_started_at timestamptz,
    locked_until                 timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- The list filters, each walked in id order for keyset pagination.
CREATE INDEX holders_category_idx ON holders (category, id);
CREATE INDEX holders_status_idx ON holders (status, id);
CREATE INDEX holders_region_idx ON holders (region, id);
-- No index serves q (card prefix OR any part of the name): an infix match needs pg_trgm,
-- which the embedded PostgreSQL does not ship; a search walks the id order and stops
-- after one page of matches.
