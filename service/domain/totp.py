"""The staff second factor: RFC 6238 TOTP (30 s steps, 6 digits, SHA-1, as every
authenticator app reads it), via pyotp. Pure: the caller passes the time and the last
step accepted, and stores the step this returns."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

STEP_SECONDS = 30
DIGITS = 6
#: A code of the previous or next step is accepted too (clocks drift).
SKEW_STEPS = 1
ISSUER = "youdai"


def new_secret() -> str:
    """A base32 secret of 160 bits (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def otpauth_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=email, issuer_name=ISSUER
    )


def step_of(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def accepted_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to (within ±1 step of now), or None when it is wrong
    or was already used: a step at or before `last_step` is never accepted again, so a
    code seen over a shoulder cannot be replayed inside its window."""
    code = code.strip()
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = step_of(now)
    for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
