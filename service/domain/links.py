"""Where links written for people point (setup links, application status links).

A link is built from YOUDAI_PUBLIC_URL, never from the request's Host header: anyone can
send any Host, and a setup link to a host of their choosing would hand them a password.
Unset (a local demo), a loopback Host is used as it came — the browser on this machine
reached the service there — and any other Host gives way to the service's own address.
"""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def is_loopback_host(host: str) -> bool:
    """Whether a Host header names this machine (127.0.0.0/8, ::1, localhost), port or not."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return False
    if name.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ip_address(name).is_loopback
    except ValueError:
        return False


def link_origin(public_url: str | None, scheme: str, host: str, own_address: str) -> str:
    """The origin (scheme://host[:port][/prefix], no trailing slash) of a link for people."""
    if public_url:
        return public_url
    if is_loopback_host(host):
        return f"{scheme}://{host}"
    return own_address
