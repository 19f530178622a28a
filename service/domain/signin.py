"""Holder sign-in rules: the PIN lockout and how long a session lasts."""

from __future__ import annotations

from datetime import timedelta

#: Five wrong PINs within the window lock the card for LOCK_DURATION, whoever asks.
MAX_WRONG_PINS = 5
ATTEMPT_WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)

#: A holder session lasts long enough to walk to the till and back, no longer.
SESSION_TTL = timedelta(minutes=30)

#: Verified against unknown card numbers and emails (and staff accounts without a
#: password) so that they cost as much time as a real one (flows.credentials; an
#: argon2id hash of a secret nobody has; its value is irrelevant).
DECOY_PIN = "000000000000"
