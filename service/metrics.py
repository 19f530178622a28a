"""Prometheus metrics: what GET /metrics exposes.

Labels carry only bounded, non-personal values: HTTP method, route template (never
the raw path, which holds ids), status, and problem codes. No card number, holder id,
name or token ever becomes a label.

With `youdai serve --workers N` every worker writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (a fresh folder the parent creates before the workers start
and removes at exit), and whichever worker answers /metrics adds them all up. The
mode is chosen once, when prometheus_client is first imported, so the folder must be
in the environment before that: the parent sets it before spawning the workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from service.domain.errors import ApiError

#: Where the workers of one `youdai serve --workers N` share their samples.
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: Decided at import, like prometheus_client itself decides how to store values.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_DIR_VARIABLE))

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: A route label for requests that matched no route (404, 405): raw paths never become labels.
UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Refusals that mean the voucher token itself did not verify for this scanner.
TOKEN_FAILURE_REASONS = ("token_invalid", "token_expired", "token_not_yet_valid", "wrong_partner")

# `_created` series double the exposition and mean nothing in multiprocess mode.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client is untyped here

HTTP_REQUESTS = Counter(
    "youdai_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "youdai_http_request_duration_seconds",
    "Time from receiving a request to having its answer, by method, route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REDEMPTIONS = Counter(
    "youdai_redemptions",
    "Redeem requests by outcome: completed, replayed, or the problem code of a refusal",
    ["outcome"],
)
REVERSALS = Counter(
    "youdai_reversals",
    "Reversal requests by outcome: completed, or the problem code of a refusal",
    ["outcome"],
)
DISCOUNT_GRANTED = Counter(
    "youdai_discount_granted_fen",
    "Discount granted by completed redemptions, in fen (replays not counted again)",
)
DISCOUNT_REVERSED = Counter(
    "youdai_discount_reversed_fen",
    "Discount given back by completed reversals, in fen",
)
TOKEN_FAILURES = Counter(
    "youdai_token_verify_failures",
    "Voucher tokens refused on preview or redeem, by reason",
    ["reason"],
)
API_KEY_CACHE_LOOKUPS = Counter(
    "youdai_api_key_cache_lookups",
    "API keys looked up in the process's cache: hit, miss (read from the database), or "
    "bypassed (the cache is not listening for key changes, so every key is read)",
    ["outcome"],
)
LEDGER_CONSISTENT = Gauge(
    "youdai_ledger_consistent",
    "1 while the stored log proves itself consistent with every checkpoint signed; 0 once "
    "it does not, and the service has stopped signing (docs/ledger.md)",
    multiprocess_mode="livemin",
)
LEDGER_CONSISTENT.set(1)
LEDGER_SIZE = Gauge(
    "youdai_ledger_size",
    "Entries in the tamper-evident log",
    multiprocess_mode="livemax",
)
POOL_SIZE = Gauge(
    "youdai_db_pool_connections",
    "Open connections in the database pools (all workers)",
    multiprocess_mode="livesum",
)
POOL_IN_USE = Gauge(
    "youdai_db_pool_connections_in_use",
    "Pooled connections lent to a request right now (all workers)",
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "youdai_db_pool_max_connections",
    "Most connections the pools may open (all workers)",
    multiprocess_mode="livesum",
)

# Known outcomes exist at zero from the start, so rates work from the first scrape.
for _outcome in ("completed", "replayed"):
    REDEMPTIONS.labels(_outcome)
REVERSALS.labels("completed")
for _reason in TOKEN_FAILURE_REASONS:
    TOKEN_FAILURES.labels(_reason)
for _outcome in ("hit", "miss", "bypassed"):
    API_KEY_CACHE_LOOKUPS.labels(_outcome)

_children: dict[tuple[str, str, int], tuple[object, object]] = {}


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """Count one answered request (called by the request middleware)."""
    key = (method, route or UNMATCHED_ROUTE, status)
    children = _children.get(key)
    if children is None:
        labels = (
            method if method in _METHODS else "other",
            route or UNMATCHED_ROUTE,
            str(status),
        )
        children = (HTTP_REQUESTS.labels(*labels), HTTP_DURATION.labels(*labels))
        if len(_children) < 10_000:  # bounded, whatever methods clients invent
            _children[key] = children
    counter, histogram = children
    counter.inc()  # type: ignore[attr-defined]
    histogram.observe(seconds)  # type: ignore[attr-defined]


def _count_refusal(counter: Counter, error: ApiError) -> None:
    counter.labels(error.code).inc()
    if error.code in TOKEN_FAILURE_REASONS:
        TOKEN_FAILURES.labels(error.code).inc()


@contextmanager
def counting_redemption_refusals() -> Iterator[None]:
    """Count an ApiError raised inside as a redemption outcome (and a token failure)."""
    try:
        yield
    except ApiError as error:
        _count_refusal(REDEMPTIONS, error)
        raise


@contextmanager
def counting_reversal_refusals() -> Iterator[None]:
    try:
        yield
    except ApiError as error:
        REVERSALS.labels(error.code).inc()
        raise


@contextmanager
def counting_token_failures() -> Iterator[None]:
    """For preview: a token that does not verify counts, other refusals do not."""
    try:
        yield
    except ApiError as error:
        if error.code in TOKEN_FAILURE_REASONS:
            TOKEN_FAILURES.labels(error.code).inc()
        raise


def redemption_answered(status: int, body: dict[str, Any], replayed: bool) -> None:
    """Count a redeem answer: a replay as `replayed`, a first 201 as `completed` with its
    discount, a refusal answered without raising under its problem code."""
    if replayed:
        REDEMPTIONS.labels("replayed").inc()
    elif status == 201:
        REDEMPTIONS.labels("completed").inc()
        DISCOUNT_GRANTED.inc(int(body.get("discount_amount") or 0))
    else:
        REDEMPTIONS.labels(str(body.get("code") or status)).inc()


def reversal_completed(discount_amount: int) -> None:
    REVERSALS.labels("completed").inc()
    DISCOUNT_REVERSED.inc(int(discount_amount))


def record_pool(pool: asyncpg.Pool) -> None:
    """Read this process's pool into the gauges (at scrape time, and every second in a
    worker so that the others' share stays current too)."""
    size = pool.get_size()
    POOL_SIZE.set(size)
    POOL_IN_USE.set(max(size - pool.get_idle_size(), 0))
    POOL_MAX.set(pool.get_max_size())


def exposition(pool: asyncpg.Pool | None = None) -> bytes:
    """The Prometheus text of this process, or of every worker in multiprocess mode."""
    if pool is not None:
        record_pool(pool)
    if MULTIPROCESS:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def mark_process_dead(pid: int) -> None:
    """Drop a finished worker's live gauges (called by the parent)."""
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
