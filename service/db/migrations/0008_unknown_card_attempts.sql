-- Wrong guesses at card numbers that no holder has, counted exactly like a real card's
-- wrong PINs: five in the window answer too_many_attempts as a real card's would, so the
-- lockout never tells a caller whether a card number exists (docs/api.md: an unknown card
-- and a wrong PIN get the same answer). Rows are forgotten once their window and lock
-- are over (housekeeping in every process).

CREATE TABLE unknown_card_attempts (
    card_number                  text PRIMARY KEY,
    failed_pin_count             integer NOT NULL DEFAULT 0 CHECK (failed_pin_count >= 0),
    failed_pin_window_started_at timestamptz,
    locked_until                 timestamptz
);
