"""Settings read once from the environment and validated before anything starts.

Every setting has the same name as its environment variable; deploy/CONFIG.md
documents each one. A bad value raises ConfigError with one sentence that the
command line prints as a single line (no traceback).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.sealing import (
    Sealer,
    SecretKeyUnavailable,
    make_sealer,
    parse_secret_key,
    read_key_file,
)

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_TOKEN_TTL = 300
DEFAULT_ISSUER = "youdai"
DEFAULT_REVERSAL_WINDOW_DAYS = 30
LOG_FORMATS = ("json", "console")
DEFAULT_SIGNIN_ADDRESS_LIMIT = 20
#: Seconds `youdai serve` stays up, not ready, after SIGTERM (0 in development: --demo).
DEFAULT_SHUTDOWN_DELAY = 5
STAFF_TOTP_POLICIES = ("optional", "required_for_bureau", "required")

#: Every environment variable the service reads; deploy tests check manifests against it.
ENVIRONMENT_VARIABLES = (
    "DATABASE_URL",
    "YOUDAI_DATA_DIR",
    "YOUDAI_TIMEZONE",
    "YOUDAI_TOKEN_TTL",
    "YOUDAI_ISSUER",
    "YOUDAI_LOG_FORMAT",
    "YOUDAI_LOG_LEVEL",
    "YOUDAI_HOST",
    "YOUDAI_PORT",
    "YOUDAI_WORKERS",
    "YOUDAI_DB_POOL_MIN",
    "YOUDAI_DB_POOL_MAX",
    "YOUDAI_REVERSAL_WINDOW_DAYS",
    "YOUDAI_SECRET_KEY",
    "YOUDAI_TRUSTED_PROXIES",
    "YOUDAI_SIGNIN_ADDRESS_LIMIT",
    "YOUDAI_STAFF_TOTP",
    "YOUDAI_HELP_PHONE",
    "YOUDAI_SHUTDOWN_DELAY",
    "YOUDAI_PUBLIC_URL",
    "YOUDAI_REGIONS",
)


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None
    data_dir: Path
    timezone: ZoneInfo
    token_ttl: int
    issuer: str
    log_format: str
    log_level: str
    host: str
    port: int
    workers: int
    db_pool_min: int
    db_pool_max: int
    reversal_window_days: int
    #: The key-encryption key (32 bytes); None: the key file in data_dir (service.sealing).
    secret_key: bytes | None = field(default=None, repr=False)
    #: Peers whose X-Forwarded-For is believed (service.api.client_address).
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    #: Failed sign-ins one address may make in the throttle window; 0 turns it off.
    signin_address_limit: int = DEFAULT_SIGNIN_ADDRESS_LIMIT
    #: YOUDAI_STAFF_TOTP: optional | required_for_bureau | required (docs/staff.md).
    staff_totp: str = "optional"
    #: The bureau's phone number the wallet page shows holders (YOUDAI_HELP_PHONE); "" hides it.
    help_phone: str = ""
    #: YOUDAI_SHUTDOWN_DELAY: seconds of not-ready serving after SIGTERM; None when unset
    #: (DEFAULT_SHUTDOWN_DELAY, or 0 for `serve --demo`: see shutdown_delay_seconds).
    shutdown_delay: int | None = None
    #: YOUDAI_PUBLIC_URL: where links written for people point (service.domain.links);
    #: None: only loopback hosts, as they come (a local demo).
    public_url: str | None = None
    #: YOUDAI_REGIONS: the bureau's districts and streets a partner's region is one of;
    #: empty: any text.
    regions: tuple[str, ...] = ()

    def own_address(self) -> str:
        """Where a browser on this machine reaches the service (a listener on every
        address is reached on loopback)."""
        host = self.host
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 - listening on all: reach it on loopback
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def people_origin(self) -> str:
        """The origin of links for people when no request is at hand (the command line)."""
        return self.public_url or self.own_address()

    def shutdown_delay_seconds(self, *, development: bool = False) -> int:
        """The delay to apply: the one set, else 0 in development, else the default."""
        if self.shutdown_delay is not None:
            return self.shutdown_delay
        return 0 if development else DEFAULT_SHUTDOWN_DELAY

    def sealer(self) -> Sealer:
        """The key-encryption key's Sealer. Only the embedded demo (no DATABASE_URL) may
        make one up in the data folder: with DATABASE_URL every process must share it."""
        try:
            return make_sealer(self.secret_key, self.data_dir, generate=self.database_url is None)
        except SecretKeyUnavailable as error:
            raise ConfigError(str(error)) from None

    def sealer_in_reach(self) -> Sealer | None:
        """YOUDAI_SECRET_KEY, else the data folder's key file if it exists; never creates
        one (for commands that need no key but check one when it is there)."""
        if self.secret_key is not None:
            return Sealer(self.secret_key)
        try:
            found = read_key_file(self.data_dir)
        except SecretKeyUnavailable as error:
            raise ConfigError(str(error)) from None
        return None if found is None else Sealer(found)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some settings replaced (used by CLI flags and tests)."""
        return replace(self, **changes)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise ConfigError on the first bad one."""
    env = os.environ if env is None else env
    database_url = env.get("DATABASE_URL") or None
    if database_url is not None:
        validate_database_url(database_url)
    log_format = env.get("YOUDAI_LOG_FORMAT") or ("console" if sys.stderr.isatty() else "json")
    if log_format not in LOG_FORMATS:
        raise ConfigError(
            f"YOUDAI_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}"
        )
    log_level = (env.get("YOUDAI_LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            f"YOUDAI_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}"
        )
    pool_min = _integer(env, "YOUDAI_DB_POOL_MIN", 1, low=0, high=100)
    pool_max = _integer(env, "YOUDAI_DB_POOL_MAX", 10, low=1, high=100)
    if pool_max < pool_min:
        raise ConfigError("YOUDAI_DB_POOL_MAX must not be smaller than YOUDAI_DB_POOL_MIN")
    issuer = env.get("YOUDAI_ISSUER") or DEFAULT_ISSUER
    staff_totp = env.get("YOUDAI_STAFF_TOTP") or "optional"
    if staff_totp not in STAFF_TOTP_POLICIES:
        raise ConfigError(
            f"YOUDAI_STAFF_TOTP must be one of {', '.join(STAFF_TOTP_POLICIES)}, not {staff_totp!r}"
        )
    return Settings(
        database_url=database_url,
        data_dir=Path(env.get("YOUDAI_DATA_DIR") or ".youdai"),
        timezone=parse_timezone(env.get("YOUDAI_TIMEZONE") or DEFAULT_TIMEZONE),
        token_ttl=_integer(env, "YOUDAI_TOKEN_TTL", DEFAULT_TOKEN_TTL, low=30, high=86_400),
        issuer=issuer,
        log_format=log_format,
        log_level=log_level,
        host=env.get("YOUDAI_HOST") or "127.0.0.1",
        port=_integer(env, "YOUDAI_PORT", 8080, low=1, high=65_535),
        workers=_integer(env, "YOUDAI_WORKERS", 1, low=1, high=64),
        db_pool_min=pool_min,
        db_pool_max=pool_max,
        reversal_window_days=_integer(
            env, "YOUDAI_REVERSAL_WINDOW_DAYS", DEFAULT_REVERSAL_WINDOW_DAYS, low=0, high=3650
        ),
        secret_key=_secret_key(env.get("YOUDAI_SECRET_KEY") or None),
        trusted_proxies=parse_networks(env.get("YOUDAI_TRUSTED_PROXIES") or ""),
        signin_address_limit=_integer(
            env, "YOUDAI_SIGNIN_ADDRESS_LIMIT", DEFAULT_SIGNIN_ADDRESS_LIMIT, low=0, high=100_000
        ),
        staff_totp=staff_totp,
        help_phone=parse_help_phone(env.get("YOUDAI_HELP_PHONE") or ""),
        shutdown_delay=(
            _integer(env, "YOUDAI_SHUTDOWN_DELAY", 0, low=0, high=300)
            if env.get("YOUDAI_SHUTDOWN_DELAY")
            else None
        ),
        public_url=parse_public_url(env.get("YOUDAI_PUBLIC_URL") or ""),
        regions=parse_regions(env.get("YOUDAI_REGIONS") or ""),
    )


def parse_regions(text: str) -> tuple[str, ...]:
    """Comma-separated names (a Chinese comma too), each at most 100 characters."""
    names = tuple(dict.fromkeys(part.strip() for part in re.split("[,，]", text) if part.strip()))
    for name in names:
        if len(name) > 100 or not name.isprintable():
            raise ConfigError(f"YOUDAI_REGIONS: {name[:20]!r}… is not a region name")
    return names


def parse_public_url(value: str) -> str | None:
    """An http(s) origin with an optional path prefix, e.g. https://youdai.example.gov.cn;
    kept without its trailing slash."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65_536
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not port_ok
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ConfigError(
            "YOUDAI_PUBLIC_URL must be an http or https address such as "
            f"https://youdai.example.gov.cn (no query, no user), got {value!r}"
        )
    return value.rstrip("/")


def _secret_key(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return parse_secret_key(text)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def parse_networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """A comma-separated list of CIDRs (or single addresses), e.g. 10.0.0.0/8,::1."""
    networks = []
    for part in text.split(","):
        if part.strip():
            try:
                networks.append(ip_network(part.strip(), strict=False))
            except ValueError:
                raise ConfigError(
                    f"YOUDAI_TRUSTED_PROXIES must be a comma-separated list of CIDRs "
                    f"(e.g. 10.0.0.0/8,127.0.0.1), not {part.strip()!r}"
                ) from None
    return tuple(networks)


_HELP_PHONE = re.compile(r"^[0-9+][0-9 ()\-]{2,30}$")


def parse_help_phone(value: str) -> str:
    """A phone number as people dial it: digits, spaces, + ( ) and -, at most 31 characters."""
    value = value.strip()
    if value and not _HELP_PHONE.match(value):
        raise ConfigError(
            f"YOUDAI_HELP_PHONE must be a phone number (digits, spaces, + ( ) -), got {value!r}"
        )
    return value


def validate_database_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(
            "DATABASE_URL must be a postgresql:// URL, e.g. postgresql://user@host:5432/youdai"
        )
    if not parts.path.strip("/") and "dbname=" not in parts.query:
        raise ConfigError(
            "DATABASE_URL must name a database, e.g. postgresql://user@host:5432/youdai"
        )
    try:
        parts.port  # noqa: B018 - urlsplit only validates the port when asked
    except ValueError:
        raise ConfigError("DATABASE_URL has a port that is not a number from 1 to 65535") from None
    return url


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"YOUDAI_TIMEZONE {name!r} is not a known IANA time zone (e.g. Asia/Shanghai)"
        ) from None


def parse_port(value: str | int, name: str = "port") -> int:
    return _parse_int(str(value), name, low=1, high=65_535)


def _integer(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return _parse_int(raw, name, low=low, high=high)


def _parse_int(raw: str, name: str, *, low: int, high: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(
            f"{name} must be a whole number from {low} to {high}, not {raw!r}"
        ) from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, not {value}")
    return value
