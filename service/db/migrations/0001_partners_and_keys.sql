-- Partners (enterprises of the programme) and the API keys that act for them.

CREATE TABLE partners (
    id            text PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    category      text NOT NULL CHECK (category IN
                    ('postal', 'culture_tourism', 'catering', 'retail', 'health', 'transport', 'other')),
    contact_name  text NOT NULL DEFAULT '',
    contact_phone text NOT NULL DEFAULT '',
    address       text NOT NULL DEFAULT '',
    status        text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'active', 'suspended', 'terminated')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX partners_status_idx ON partners (status, id);
CREATE INDEX partners_category_idx ON partners (category, id);

-- Keys are stored only as the SHA-256 of the secret; the secret is shown once.
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    key_hash     bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    role         text NOT NULL CHECK (role IN ('admin', 'partner', 'scanner')),
    partner_id   text REFERENCES partners (id),
    label        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    -- Rule 5: an admin key belongs to no partner; partner and scanner keys belong to exactly one.
    CHECK ((role = 'admin') = (partner_id IS NULL))
);
CREATE INDEX api_keys_partner_idx ON api_keys (partner_id, id);

-- Who changed what: appended to in the same transaction as the change, never rewritten.
CREATE TABLE audit_events (
    id          text PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_id    text NOT NULL,
    actor_role  text NOT NULL,
    action      text NOT NULL,
    entity_type text NOT NULL,
    entity_id   text NOT NULL,
    changes     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id, id);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id);
