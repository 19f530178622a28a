"""Where links for people point (service.domain.links) and YOUDAI_PUBLIC_URL's form."""

from __future__ import annotations

import pytest

from service.config import ConfigError, load_settings
from service.domain.links import is_loopback_host, link_origin

OWN = "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:8080", True),
        ("127.8.9.10:1", True),
        ("[::1]:8080", True),
        ("localhost", True),
        ("LOCALHOST:80", True),
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("10.0.0.1", False),
        ("[::ffff:10.0.0.1]", False),
        ("", False),
        ("[", False),
    ],
)
def test_only_this_machine_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_links_come_from_the_public_url_then_loopback_then_the_services_own_address() -> None:
    public = "https://youdai.example.gov.cn"
    assert link_origin(public, "http", "evil.example", OWN) == public
    assert link_origin(public, "http", "127.0.0.1:9", OWN) == public
    assert link_origin(None, "http", "localhost:9000", OWN) == "http://localhost:9000"
    assert link_origin(None, "http", "evil.example", OWN) == OWN


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("https://youdai.example.gov.cn/", "https://youdai.example.gov.cn"),
        ("http://10.1.2.3:8080/youdai", "http://10.1.2.3:8080/youdai"),
    ],
)
def test_a_public_url_is_kept_without_its_trailing_slash(value: str, kept: str) -> None:
    assert load_settings({"YOUDAI_PUBLIC_URL": value}).public_url == kept


@pytest.mark.parametrize(
    "value",
    [
        "youdai.example.gov.cn",
        "ftp://x.example",
        "https://",
        "https://x.example/?a=1",
        "https://u@x.example",
        "https://x.example:99999",
    ],
)
def test_a_public_url_that_is_not_an_http_address_stops_start_up(value: str) -> None:
    with pytest.raises(ConfigError, match="YOUDAI_PUBLIC_URL"):
        load_settings({"YOUDAI_PUBLIC_URL": value})
