"""Which hop of a request is the client (for the per-address sign-in throttle)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_network

import pytest

from service.domain.throttle import ADDRESS_WINDOW, resolve_client, retry_after_seconds

PROXIES = (ip_network("10.0.0.0/8"), ip_network("::1/128"))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() -> None:
    assert resolve_client("203.0.113.9", ["198.51.100.1"], ()) == "203.0.113.9"


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        # The client may write anything left of what the proxies appended.
        ("10.0.0.2", ["1.1.1.1, 198.51.100.7"], "198.51.100.7"),
        ("10.0.0.2", ["1.1.1.1, 198.51.100.7, 10.0.0.5"], "198.51.100.7"),
        ("10.0.0.2", ["1.1.1.1", "198.51.100.7"], "198.51.100.7"),
        ("::1", ["2001:db8::5"], "2001:db8::5"),
        ("10.0.0.2", ["[2001:db8::5]:4711"], "2001:db8::5"),
        ("10.0.0.2", ["198.51.100.7:1234"], "198.51.100.7"),
        # Nothing forwarded, or only proxies: the last proxy.
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["10.0.0.3"], "10.0.0.3"),
        # A hop that is not an address is not believed: the walk stops at the proxy.
        ("10.0.0.2", ["198.51.100.7, garbage"], "10.0.0.2"),
        ("203.0.113.9", ["10.0.0.1"], "203.0.113.9"),
    ],
)
def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert resolve_client(peer, forwarded, PROXIES) == client


def test_no_peer_is_one_unknown_address() -> None:
    assert resolve_client(None, [], PROXIES) == "unknown"


def test_retry_after_counts_to_the_end_of_the_window() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert retry_after_seconds(start, start) == ADDRESS_WINDOW.total_seconds()
    assert retry_after_seconds(start, start + ADDRESS_WINDOW) == 1
    assert retry_after_seconds(start, start + timedelta(minutes=14, seconds=59.5)) == 1
