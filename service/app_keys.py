"""Typed application state (aiohttp AppKey), shared by the app factory and handlers."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from service.clock import Clock
from service.config import Settings
from service.flows.holder_imports import ImportJobs
from service.flows.key_cache import KeyCache
from service.flows.keyring import Keyring
from service.qr import RenderPool
from service.sealing import Sealer

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
DSN = web.AppKey("dsn", str)
KEYRING = web.AppKey("keyring", Keyring)
#: The API keys this process has verified, forgotten when PostgreSQL announces a change.
KEY_CACHE = web.AppKey("key_cache", KeyCache)
QR_POOL = web.AppKey("qr_pool", RenderPool)
#: Seals secrets kept in PostgreSQL (signing keys, staff TOTP secrets): service.sealing.
SEALER = web.AppKey("sealer", Sealer)
IMPORTS = web.AppKey("imports", ImportJobs)
#: Set on SIGTERM (service/server.py): /readyz answers 503 while the process still serves.
STOPPING = web.AppKey("stopping", asyncio.Event)
#: The time for every flow a handler or a task of the app calls (service/clock.py): a test
#: builds the app with a clock it sets instead of waiting for the hour.
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
