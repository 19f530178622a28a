-- Every process caches the keys it has verified (service/flows/key_cache.py) and must forget
-- one the moment it stops being what was cached: each change of a key is announced on
-- the channel youdai_api_keys, with the key's id as payload (never its hash or secret);
-- '*' means forget them all. NOTIFY is delivered when the changing transaction commits,
-- and not at all if it rolls back.

CREATE FUNCTION youdai_api_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        -- TRUNCATE has no rows to name.
        PERFORM pg_notify('youdai_api_keys', '*');
    ELSE
        PERFORM pg_notify('youdai_api_keys', OLD.id);
    END IF;
    RETURN NULL;
END $$;

-- Any column but last_used_at: every verified use refreshes it (once a minute per
-- key), which changes nothing a cache holds and must not wake every process. Written
-- as "all but", so a column added later is announced without touching this trigger.
CREATE TRIGGER api_keys_changed AFTER UPDATE ON api_keys
    FOR EACH ROW
    WHEN (to_jsonb(OLD) - 'last_used_at' IS DISTINCT FROM to_jsonb(NEW) - 'last_used_at')
    EXECUTE FUNCTION youdai_api_key_changed();
CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION youdai_api_key_changed();
CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION youdai_api_key_changed();
