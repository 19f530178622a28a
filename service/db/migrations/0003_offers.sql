-- Offers: what a partner grants card holders, with its kind, window, limits and the
-- counters redemption maintains in the same transaction as each redemption.

CREATE TABLE offers (
    id                  text PRIMARY KEY,
    partner_id          text NOT NULL REFERENCES partners (id),
    title               text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description         text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    kind                text NOT NULL
                          CHECK (kind IN ('percent_off', 'amount_off', 'fixed_price', 'service')),
    -- Kind fields: money in fen, percent in basis points (1500 = 15 %).
    percent_bp          integer CHECK (percent_bp BETWEEN 1 AND 10000),
    max_discount        bigint CHECK (max_discount > 0),
    amount_off          bigint CHECK (amount_off > 0),
    fixed_price         bigint CHECK (fixed_price >= 0),
    nominal_value       bigint CHECK (nominal_value >= 0),
    min_purchase        bigint CHECK (min_purchase >= 0),
    -- Validity window; NULL means open on that side.
    starts_at           timestamptz,
    ends_at             timestamptz,
    eligible_categories text[] NOT NULL DEFAULT '{}' CHECK (eligible_categories <@ ARRAY[
                          'veteran', 'disabled_veteran', 'martyr_family', 'military_family', 'other'
                        ]::text[]),
    uses_per_voucher    integer NOT NULL DEFAULT 1 CHECK (uses_per_voucher >= 1),
    holder_limit_count  integer CHECK (holder_limit_count >= 1),
    holder_limit_period text CHECK (holder_limit_period IN ('day', 'week', 'month', 'year', 'ever')),
    total_redemptions   integer CHECK (total_redemptions >= 1),
    budget              bigint CHECK (budget > 0),
    voucher_valid_days  integer CHECK (voucher_valid_days >= 1),
    status              text NOT NULL DEFAULT 'draft'
                          CHECK (status IN ('draft', 'active', 'paused', 'ended')),
    -- Counters of completed minus reversed redemptions, kept by redemption in its transaction.
    redeemed_count      integer NOT NULL DEFAULT 0,
    spent               bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT offers_window CHECK (ends_at > starts_at),
    CONSTRAINT offers_holder_limit_pair
        CHECK ((holder_limit_count IS NULL) = (holder_limit_period IS NULL)),
    -- Each kind has its own required field, and fields of the other kinds stay empty.
    CONSTRAINT offers_kind_fields CHECK (CASE kind
        WHEN 'percent_off' THEN percent_bp IS NOT NULL
            AND amount_off IS NULL AND fixed_price IS NULL AND nominal_value IS NULL
        WHEN 'amount_off' THEN amount_off IS NOT NULL
            AND percent_bp IS NULL AND max_discount IS NULL
            AND fixed_price IS NULL AND nominal_value IS NULL
        WHEN 'fixed_price' THEN fixed_price IS NOT NULL
            AND percent_bp IS NULL AND max_discount IS NULL
            AND amount_off IS NULL AND nominal_value IS NULL
        WHEN 'service' THEN nominal_value IS NOT NULL
            AND percent_bp IS NULL AND max_discount IS NULL
            AND amount_off IS NULL AND fixed_price IS NULL
    END),
    -- Rule 1, last line of defence: never one use past the total, never one fen past the budget.
    CONSTRAINT offers_redeemed_within_total
        CHECK (redeemed_count >= 0 AND (total_redemptions IS NULL OR redeemed_count <= total_redemptions)),
    CONSTRAINT offers_spent_within_budget
        CHECK (spent >= 0 AND (budget IS NULL OR spent <= budget))
);
CREATE INDEX offers_partner_idx ON offers (partner_id, id);
CREATE INDEX offers_status_idx ON offers (status, id);
