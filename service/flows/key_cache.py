"""Each process's cache of the API keys it has verified, kept true by PostgreSQL.

Without it every request with a key reads api_keys, on a pooled connection taken for
just that. With it, a key verified once is answered from memory until MAX_AGE has
passed or its use is due to be recorded in last_used_at (LAST_USED_RESOLUTION), and is
forgotten as soon as it changes anywhere: migration 0013 has PostgreSQL announce every
change of a key (a revocation above all) on the channel youdai_api_keys, and a
connection of the cache's own, outside the pool, LISTENs to it.

The cache is only as good as that connection. Whenever it is not listening (not
connected yet, connection lost, heartbeat unanswered) the cache is emptied and
bypassed: every request reads the database, as with no cache at all, while a task
reconnects with a growing delay. Once LISTEN is back, the cache is emptied again
(announcements may have been missed meanwhile) and used again.

Only live keys are kept. An unknown or revoked secret reads the database every time:
a key issued a moment ago works on its first use, and made-up secrets cannot fill the
cache or push real keys out of it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from service import metrics
from service.db import keys as keys_db
from service.db.keys import LiveKey

log = logging.getLogger("youdai.key_cache")

#: Where migration 0013's trigger announces changed keys: the key's id, or FORGET_ALL.
CHANNEL = "youdai_api_keys"
FORGET_ALL = "*"
#: How the listening connection shows in pg_stat_activity.
APPLICATION_NAME = "youdai-key-listener"
#: Seconds an entry is trusted at most, even with no announcement: a bound on what a
#: lost announcement could cost that does not depend on noticing the loss.
MAX_AGE = 60.0
#: Entries kept at most; beyond, the longest-held go first.
MAX_ENTRIES = 10_000
#: Seconds between two checks that the listening connection still answers. A connection
#: dropped without a word (a firewall forgetting an idle connection) is only found by
#: asking; until then the cache trusts it, so this bounds that blind spot.
HEARTBEAT_INTERVAL = 5.0
#: Seconds to connect, or to answer a heartbeat, before the connection counts as lost.
LISTENER_TIMEOUT = 5.0
#: Seconds between reconnection attempts: doubling from the first to the last.
FIRST_RETRY = 0.1
LAST_RETRY = 5.0


@dataclass(frozen=True, slots=True)
class _Entry:
    key: LiveKey
    good_until: float  # on the cache's monotonic clock


class KeyCache:
    def __init__(
        self,
        dsn: str,
        *,
        max_age: float = MAX_AGE,
        max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dsn = dsn
        #: Seconds that only move forward: how old an entry is. A test replaces it to age
        #: the entries instead of waiting.
        self.monotonic = monotonic
        self._max_age = max_age
        self._max_entries = max_entries
        self._entries: dict[bytes, _Entry] = {}  # in insertion order: the eviction order
        self._hash_of: dict[str, bytes] = {}  # key id -> its entry's key hash
        self._listener: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._first_attempt_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Moves on every forgetting, so that a read that began before a key was forgotten
        # (it may have seen the key before its revocation committed) is not cached after.
        self._version = 0
        #: Lookups by outcome (hit, miss, bypassed), for tests and debugging.
        self.lookups: collections.Counter[str] = collections.Counter()

    @property
    def listening(self) -> bool:
        return self._listener is not None

    @property
    def version(self) -> int:
        """Take it before reading a key from the database, and give it to remember()."""
        return self._version

    def lookup(self, key_hash: bytes) -> LiveKey | None:
        """The cached live key of this hash; None when the database must be asked."""
        if self._listener is None:
            self._count("bypassed")
            return None
        entry = self._entries.get(key_hash)
        if entry is None or entry.good_until <= self.monotonic():
            if entry is not None:
                self._drop(key_hash)
            self._count("miss")
            return None
        self._count("hit")
        return entry.key

    def remember(self, key_hash: bytes, key: LiveKey, read_since: int) -> None:
        """Keep a key just read as live, unless anything was forgotten since the read
        began (`read_since`, from `version`) or the cache is not listening."""
        if self._listener is None or read_since != self._version:
            return
        # Good until its use is due to be recorded again: then the next request reads the
        # key afresh, which refreshes last_used_at as it always has (and checks it again).
        use_due_in = keys_db.LAST_USED_RESOLUTION.total_seconds() - max(
            key.use_recorded_ago.total_seconds(), 0.0
        )
        good_for = min(self._max_age, use_due_in)
        if good_for <= 0:
            return
        self._drop(key_hash)
        self._entries[key_hash] = _Entry(key, self.monotonic() + good_for)
        self._hash_of[key.id] = key_hash
        while len(self._entries) > self._max_entries:
            self._drop(next(iter(self._entries)))

    async def start(self) -> None:
        """Start listening. Waits for the first attempt, so that a process starting on a
        healthy database uses the cache from its first request, but never fails: without
        a listener the cache is bypassed until one connects."""
        self._task = asyncio.create_task(self._keep_listening())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt_done.wait(), LISTENER_TIMEOUT * 2)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        listener, self._listener = self._listener, None
        self._forget_all()
        if listener is not None:
            try:
                await asyncio.wait_for(listener.close(), LISTENER_TIMEOUT)
            except Exception:  # gone already, or not answering: let the socket go
                listener.terminate()

    async def _keep_listening(self) -> None:
        delay = FIRST_RETRY
        while True:
            try:
                conn = await self._listen()
            except Exception as error:  # the database may be away; try again soon
                log.warning(
                    "cannot listen for key changes; reading every key from the database",
                    extra={"error": str(error) or type(error).__name__, "retry_in": delay},
                )
                self._first_attempt_done.set()
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, LAST_RETRY)
                continue
            self._first_attempt_done.set()
            delay = FIRST_RETRY
            await self._watch(conn)

    async def _listen(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(
            self._dsn,
            timeout=LISTENER_TIMEOUT,
            command_timeout=LISTENER_TIMEOUT,
            server_settings={"application_name": APPLICATION_NAME},
        )
        try:
            conn.add_termination_listener(self._on_connection_lost)
            await conn.add_listener(CHANNEL, self._on_key_changed)
        except BaseException:
            conn.terminate()
            raise
        # Announcements made while nobody listened are lost: what was cached may be stale.
        self._forget_all()
        self._lost.clear()
        self._listener = conn
        log.info("listening for key changes")
        return conn

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when the listening connection is lost, asking it now and then."""
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), HEARTBEAT_INTERVAL)
            except TimeoutError:
                pass  # quiet for a while: time to ask
            else:
                return
            try:
                await conn.fetchval("SELECT 1", timeout=LISTENER_TIMEOUT)
            except Exception:
                self._on_connection_lost(conn)
                conn.terminate()
                return

    def _on_connection_lost(self, conn: Any) -> None:
        if conn is not self._listener:
            return  # one we closed, or replaced already
        self._listener = None
        self._forget_all()
        self._lost.set()
        log.warning("stopped listening for key changes; reading every key from the database")

    def forget(self, key_id: str) -> None:
        self._version += 1
        key_hash = self._hash_of.get(key_id)
        if key_hash is not None:
            self._drop(key_hash)

    def _on_key_changed(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if payload == FORGET_ALL:
            self._forget_all()
        else:
            self.forget(payload)

    def _forget_all(self) -> None:
        self._version += 1
        self._entries.clear()
        self._hash_of.clear()

    def _drop(self, key_hash: bytes) -> None:
        entry = self._entries.pop(key_hash, None)
        if entry is not None and self._hash_of.get(entry.key.id) == key_hash:
            del self._hash_of[entry.key.id]

    def _count(self, outcome: str) -> None:
        self.lookups[outcome] += 1
        metrics.API_KEY_CACHE_LOOKUPS.labels(outcome).inc()
