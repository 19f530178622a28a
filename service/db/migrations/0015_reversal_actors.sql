-- A reversal names who made it the way the audit log does (docs/staff.md: `{"type": "staff",
-- "id", "display_name"}` or `{"type": "key", "id", "label"}`), so a redemption shows its
-- reversal's actor as it was at the time. Rows written before this migration take theirs
-- from the staff account or key their actor id names; the ledger's append-only trigger
-- steps aside for that one backfill, inside this migration's transaction.
ALTER TABLE reversals ADD COLUMN actor jsonb;

ALTER TABLE reversals DISABLE TRIGGER reversals_append_only;
UPDATE reversals x
SET actor = CASE
    WHEN s.id IS NOT NULL THEN
        jsonb_build_object('type', 'staff', 'id', s.id, 'display_name', s.display_name)
    WHEN k.id IS NOT NULL THEN jsonb_build_object('type', 'key', 'id', k.id, 'label', k.label)
    ELSE jsonb_build_object('type', 'system') END
FROM reversals y
LEFT JOIN staff_accounts s ON s.id = y.actor_id
LEFT JOIN api_keys k ON k.id = y.actor_id
WHERE y.id = x.id;
ALTER TABLE reversals ENABLE TRIGGER reversals_append_only;

ALTER TABLE reversals ALTER COLUMN actor SET NOT NULL;
