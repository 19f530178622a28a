-- Enterprises that ask to join (docs/api.md): an application, decided once by the bureau.
-- The applicant's status link is a random token stored only as its SHA-256 hash.
CREATE TABLE partner_applications (
    id                text PRIMARY KEY,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- The name without spaces, in lower case, and the contact phone's digits: what a
    -- duplicate is compared by.
    name_key          text NOT NULL,
    category          text NOT NULL,
    contact_name      text NOT NULL CHECK (length(contact_name) <= 100),
    contact_phone     text NOT NULL CHECK (length(contact_phone) <= 40),
    phone_key         text NOT NULL,
    contact_email     text NOT NULL CHECK (length(contact_email) BETWEEN 3 AND 254),
    address           text NOT NULL CHECK (length(address) <= 300),
    region            text NOT NULL CHECK (length(region) <= 100),
    public_phone      text NOT NULL DEFAULT '' CHECK (length(public_phone) <= 40),
    opening_hours     text NOT NULL DEFAULT '' CHECK (length(opening_hours) <= 100),
    offer_idea        text NOT NULL CHECK (length(offer_idea) <= 1000),
    status            text NOT NULL DEFAULT 'submitted'
                        CHECK (status IN ('submitted', 'approved', 'rejected')),
    rejection_reason  text CHECK (length(rejection_reason) <= 500),
    partner_id        text REFERENCES partners (id),
    status_token_hash bytea NOT NULL UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    decided_at        timestamptz,
    -- A decision is made once, and says what it made.
    CHECK ((status = 'submitted') = (decided_at IS NULL)),
    CHECK ((status = 'approved') = (partner_id IS NOT NULL)),
    CHECK ((status = 'rejected') = (rejection_reason IS NOT NULL))
);
-- Rule: one open application per name and per contact phone.
CREATE UNIQUE INDEX partner_applications_open_name_idx
    ON partner_applications (name_key) WHERE status = 'submitted';
CREATE UNIQUE INDEX partner_applications_open_phone_idx
    ON partner_applications (phone_key) WHERE status = 'submitted';
-- The bureau's list by status, newest first.
CREATE INDEX partner_applications_status_idx ON partner_applications (status, id);

-- Applications sent from one client address (docs/api.md: at most 5 an hour). Rows older
-- than the window are deleted as the address sends again.
CREATE TABLE partner_application_attempts (
    address      text NOT NULL,
    attempted_at timestamptz NOT NULL
);
CREATE INDEX partner_application_attempts_idx
    ON partner_application_attempts (address, attempted_at);
