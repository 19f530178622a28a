"""Sign-in throttling per client address (docs/api.md), pure: which hop of a request is the
client, and what a window of failures means. The counts live in PostgreSQL
(service/db/sign_in_throttle.py) so that every process sees the same ones."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

#: Failures of any kind of sign-in from one address count within this window.
ADDRESS_WINDOW = timedelta(minutes=15)

Network = IPv4Network | IPv6Network


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ip_address(text)
    except ValueError:
        return None


def resolve_client(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the
    right-most X-Forwarded-For hop that is not itself a trusted proxy. Hops to the left
    of it were written by the client and prove nothing. A hop that is not an address
    stops the walk at the last proxy that was trusted (it cannot be believed)."""
    current = _parse(peer or "")
    if current is None:
        return peer or "unknown"
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    while any(current in network for network in trusted) and hops:
        previous = _parse(hops.pop())
        if previous is None:
            break
        current = previous
    return str(current)


def retry_after_seconds(window_started_at: datetime, now: datetime) -> int:
    """Whole seconds until a window of failures is over (at least 1)."""
    return max(1, math.ceil((window_started_at + ADDRESS_WINDOW - now).total_seconds()))
