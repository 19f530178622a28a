-- Reports stay fast at any size of the ledger: a month of the daily rollup summed once.
--
-- discount_rollup_monthly holds the same totals as discount_rollup, per calendar month
-- (the first local day of the month) instead of per local day. A trigger on
-- discount_rollup moves it in the same statement as every daily row, so it is kept in
-- the same transaction as the ledger row that caused it (rule 4) and can never drift;
-- `youdai reconcile` checks it against the daily rollup all the same.
-- A report reads whole months here and the days of a partial month from discount_rollup.

LOCK TABLE discount_rollup IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE discount_rollup_monthly (
    month           date NOT NULL CHECK (extract(day FROM month) = 1),
    partner_id      text NOT NULL,
    offer_id        text NOT NULL,
    holder_category text NOT NULL,
    redemptions     bigint NOT NULL DEFAULT 0,
    reversals       bigint NOT NULL DEFAULT 0,
    purchase_total  bigint NOT NULL DEFAULT 0,
    discount_total  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (month, partner_id, offer_id, holder_category)
) WITH (fillfactor = 70);  -- room on each page for in-place (HOT) updates of busy rows
-- A partner's own report reads only its rows.
CREATE INDEX discount_rollup_monthly_partner_idx ON discount_rollup_monthly (partner_id, month);

-- Move one month's totals by the given amounts (an upsert: the first day makes the row).
CREATE FUNCTION youdai_rollup_month_add(
    in_day date, in_partner text, in_offer text, in_category text,
    in_redemptions bigint, in_reversals bigint, in_purchase bigint, in_discount bigint
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO discount_rollup_monthly AS m
        (month, partner_id, offer_id, holder_category,
         redemptions, reversals, purchase_total, discount_total)
    VALUES (date_trunc('month', in_day)::date, in_partner, in_offer, in_category,
            in_redemptions, in_reversals, in_purchase, in_discount)
    ON CONFLICT (month, partner_id, offer_id, holder_category) DO UPDATE
    SET redemptions = m.redemptions + EXCLUDED.redemptions,
        reversals = m.reversals + EXCLUDED.reversals,
        purchase_total = m.purchase_total + EXCLUDED.purchase_total,
        discount_total = m.discount_total + EXCLUDED.discount_total;
$$;

CREATE FUNCTION youdai_rollup_month_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Rule 4: the month moves by exactly what the day moved, in the same statement.
    IF TG_OP = 'UPDATE'
       AND date_trunc('month', NEW.day) = date_trunc('month', OLD.day)
       AND (NEW.partner_id, NEW.offer_id, NEW.holder_category)
         = (OLD.partner_id, OLD.offer_id, OLD.holder_category) THEN
        -- The usual case, one more redemption or reversal on a day: one write.
        PERFORM youdai_rollup_month_add(
            NEW.day, NEW.partner_id, NEW.offer_id, NEW.holder_category,
            NEW.redemptions - OLD.redemptions, NEW.reversals - OLD.reversals,
            NEW.purchase_total - OLD.purchase_total, NEW.discount_total - OLD.discount_total);
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM youdai_rollup_month_add(
            OLD.day, OLD.partner_id, OLD.offer_id, OLD.holder_category,
            -OLD.redemptions, -OLD.reversals, -OLD.purchase_total, -OLD.discount_total);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM youdai_rollup_month_add(
            NEW.day, NEW.partner_id, NEW.offer_id, NEW.holder_category,
            NEW.redemptions, NEW.reversals, NEW.purchase_total, NEW.discount_total);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER discount_rollup_month_follows
    AFTER INSERT OR UPDATE OR DELETE ON discount_rollup
    FOR EACH ROW EXECUTE FUNCTION youdai_rollup_month_follow();

CREATE FUNCTION youdai_rollup_month_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM discount_rollup_monthly;
    RETURN NULL;
END $$;

CREATE TRIGGER discount_rollup_month_truncates
    AFTER TRUNCATE ON discount_rollup
    FOR EACH STATEMENT EXECUTE FUNCTION youdai_rollup_month_truncate();

-- Existing totals, copied while no redemption can add to them (the lock is held until
-- this migration commits, so the trigger sees every later change).
INSERT INTO discount_rollup_monthly
    (month, partner_id, offer_id, holder_category,
     redemptions, reversals, purchase_total, discount_total)
SELECT date_trunc('month', day)::date, partner_id, offer_id, holder_category,
       sum(redemptions), sum(reversals), sum(purchase_total), sum(discount_total)
FROM discount_rollup
GROUP BY 1, 2, 3, 4;

-- The summary counts vouchers issued in a period.
CREATE INDEX vouchers_created_idx ON vouchers (created_at);
