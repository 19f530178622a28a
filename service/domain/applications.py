"""Applications to join as a partner (docs/api.md), pure: what makes two the same, how many
one client address may send, and the applicant's secret status link."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

STATUSES = ("submitted", "approved", "rejected")
#: At most this many applications from one client address within the window.
ADDRESS_LIMIT = 5
ADDRESS_WINDOW = timedelta(hours=1)
#: The status link's token: 256 random bits, so SHA-256 of it is all that is stored.
STATUS_TOKEN_PREFIX = "yap_"  # noqa: S105 - a prefix, not a credential
ID_PREFIX = "apl_"


def name_key(name: str) -> str:
    """A name as duplicates are compared: without any space, in lower case."""
    return "".join(name.split()).lower()


def phone_key(phone: str) -> str:
    """A phone number as duplicates are compared: its digits only."""
    return "".join(ch for ch in phone if "0" <= ch <= "9")


def new_status_token() -> str:
    return STATUS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_status_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def retry_after_seconds(oldest_in_window: datetime, now: datetime) -> int:
    """Whole seconds until the oldest application in the window leaves it (at least 1)."""
    return max(1, math.ceil((oldest_in_window + ADDRESS_WINDOW - now).total_seconds()))


# An application as stored (db/applications.py reads it) -------------------------------


@dataclass(frozen=True, slots=True)
class Application:
    id: str
    name: str
    category: str
    contact_name: str
    contact_phone: str
    contact_email: str
    address: str
    region: str
    public_phone: str
    opening_hours: str
    offer_idea: str
    status: str
    rejection_reason: str | None
    partner_id: str | None
    created_at: datetime
    decided_at: datetime | None
