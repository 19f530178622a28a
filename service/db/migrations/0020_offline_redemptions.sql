-- Offline tills (issue 29, docs/rules.md "Offline redemptions"): a till that lost its
-- network grants the discount on its own and sends the redemption later. The service
-- records every such redemption of a valid token, because the discount was given: when
-- the rules would have refused it online, it is recorded all the same, with the code of
-- the first rule that would have refused (`conflict`).

-- When the till made it (created_at stays when it arrived), and the rule it broke.
ALTER TABLE redemptions
    ADD COLUMN offline_at timestamptz,
    ADD COLUMN conflict text
        CHECK (conflict IS NULL OR (offline_at IS NOT NULL AND conflict ~ '^[a-z_]{1,64}$'));
-- The bureau's lists of offline redemptions and of conflicts, newest first: few rows.
CREATE INDEX redemptions_offline_idx ON redemptions (id) WHERE offline_at IS NOT NULL;
CREATE INDEX redemptions_conflict_idx ON redemptions (id) WHERE conflict IS NOT NULL;

-- A voucher redeemed offline more times than it allows: uses_left stays at 0 (what the
-- holder and the till are shown) and the uses beyond it are counted here, so that
-- uses_total - uses_left + uses_over is exactly its ledger rows not reversed.
ALTER TABLE vouchers
    ADD COLUMN uses_over integer NOT NULL DEFAULT 0
        CHECK (uses_over >= 0 AND (uses_over = 0 OR uses_left = 0));

-- Rule 1's last line of defence stays: the redemptions recorded without a conflict (every
-- online one) never take an offer one use past its total or one fen past its budget. An
-- offline conflict may (the discount was given, and the counters stay exact): the uses
-- and spending of the conflicts not reversed are counted beside the totals, and only
-- what is left once they are taken out is held to the limits.
ALTER TABLE offers
    ADD COLUMN conflict_count integer NOT NULL DEFAULT 0,
    ADD COLUMN conflict_spent bigint NOT NULL DEFAULT 0;
ALTER TABLE offers DROP CONSTRAINT offers_redeemed_within_total;
ALTER TABLE offers DROP CONSTRAINT offers_spent_within_budget;
ALTER TABLE offers ADD CONSTRAINT offers_redeemed_within_total
    CHECK (redeemed_count >= 0 AND conflict_count >= 0 AND conflict_count <= redeemed_count
           AND (total_redemptions IS NULL
                OR redeemed_count - conflict_count <= total_redemptions));
ALTER TABLE offers ADD CONSTRAINT offers_spent_within_budget
    CHECK (spent >= 0 AND conflict_spent >= 0 AND conflict_spent <= spent
           AND (budget IS NULL OR spent - conflict_spent <= budget));

-- Reports count how many redemptions were offline and how many had a conflict, from the
-- same rollups as every other figure (written by the redeem statement, rule 4).
ALTER TABLE discount_rollup
    ADD COLUMN offline bigint NOT NULL DEFAULT 0,
    ADD COLUMN conflicts bigint NOT NULL DEFAULT 0;
ALTER TABLE discount_rollup_monthly
    ADD COLUMN offline bigint NOT NULL DEFAULT 0,
    ADD COLUMN conflicts bigint NOT NULL DEFAULT 0;

-- A till's pack lists the vouchers that can no longer be used whose newest token is still
-- alive (docs/api.md): found from the few live tokens, not from every voucher.
CREATE INDEX voucher_codes_expires_idx ON voucher_codes (expires_at);
