-- A partner's public profile (docs/api.md): what the directory shows holders, beside the
-- internal contact. `listed` false keeps an active partner out of the directory.
ALTER TABLE partners
    ADD COLUMN region        text NOT NULL DEFAULT '' CHECK (length(region) <= 100),
    ADD COLUMN public_phone  text NOT NULL DEFAULT '' CHECK (length(public_phone) <= 40),
    ADD COLUMN opening_hours text NOT NULL DEFAULT '' CHECK (length(opening_hours) <= 100),
    ADD COLUMN listed        boolean NOT NULL DEFAULT true;

-- The directory: active, listed partners, filtered by category or region, in id order.
CREATE INDEX partners_directory_idx ON partners (id) WHERE status = 'active' AND listed;
-- An offer active now, by partner.
CREATE INDEX offers_active_by_partner_idx ON offers (partner_id, id) WHERE status = 'active';
