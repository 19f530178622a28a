-- Staff accounts (docs/product.md "Staff account", 7): people who sign in with a password and,
-- optionally, a TOTP second factor; their invitations and their cookie sessions. Every
-- secret is stored only as a hash (passwords argon2id; setup tokens and session secrets
-- SHA-256, since they carry 256 random bits), and a TOTP secret only sealed.

CREATE TABLE staff_accounts (
    id                    text PRIMARY KEY,
    email                 text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    display_name          text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    role                  text NOT NULL
                            CHECK (role IN ('bureau_admin', 'bureau_auditor', 'partner_manager')),
    partner_id            text REFERENCES partners (id),
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    password_hash         text,
    totp_secret_sealed    bytea,
    totp_enabled          boolean NOT NULL DEFAULT false,
    -- Rule: a TOTP code is accepted once: the last accepted time step is remembered.
    totp_last_step        bigint,
    pending_totp_sealed   bytea,
    failed_signin_count   integer NOT NULL DEFAULT 0 CHECK (failed_signin_count >= 0),
    failed_signin_window_started_at timestamptz,
    locked_until          timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- Rule 5: a partner_manager belongs to exactly one partner; bureau staff to none.
    CHECK ((role = 'partner_manager') = (partner_id IS NOT NULL)),
    CHECK (NOT totp_enabled OR totp_secret_sealed IS NOT NULL)
);
-- Emails are unique whatever their case.
CREATE UNIQUE INDEX staff_accounts_email_idx ON staff_accounts (lower(email));
CREATE INDEX staff_accounts_role_idx ON staff_accounts (role, id);
CREATE INDEX staff_accounts_partner_idx ON staff_accounts (partner_id, id);

-- One-time setup links: valid 72 hours, used once.
CREATE TABLE staff_invitations (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    staff_id    text NOT NULL REFERENCES staff_accounts (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX staff_invitations_staff_idx ON staff_invitations (staff_id);

-- Cookie sessions: 30 minutes idle, 12 hours at most. `role` is the account's role when
-- the session began: a session whose account changed role no longer matches.
CREATE TABLE staff_sessions (
    id            text PRIMARY KEY,
    secret_hash   bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    staff_id      text NOT NULL REFERENCES staff_accounts (id) ON DELETE CASCADE,
    role          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX staff_sessions_staff_idx ON staff_sessions (staff_id);

-- Who did it, as docs/staff.md names an actor: {"type": "staff", "id", "display_name"} or
-- {"type": "key", "id", "label"} (also "holder" and "system").
ALTER TABLE audit_events ADD COLUMN actor jsonb;
UPDATE audit_events SET actor = CASE
    WHEN actor_role IN ('admin', 'partner', 'scanner')
        THEN jsonb_build_object('type', 'key', 'id', actor_id, 'label',
                                (SELECT label FROM api_keys WHERE api_keys.id = actor_id))
    WHEN actor_role = 'holder' THEN jsonb_build_object('type', 'holder', 'id', actor_id)
    ELSE jsonb_build_object('type', 'system')
END;
ALTER TABLE audit_events ALTER COLUMN actor SET NOT NULL;
CREATE INDEX audit_events_actor_type_idx ON audit_events ((actor ->> 'type'), id);

-- Failed sign-ins with emails no account has, counted like an account's own: five in the
-- window answer too_many_attempts as a real account would, so the lockout never tells
-- whether an email has an account. Forgotten once window and lock are over.
CREATE TABLE staff_unknown_email_attempts (
    email                           text PRIMARY KEY,
    failed_signin_count             integer NOT NULL DEFAULT 0 CHECK (failed_signin_count >= 0),
    failed_signin_window_started_at timestamptz,
    locked_until                    timestamptz
);
