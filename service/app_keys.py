"""Typed application state (aiohttp AppKey), shared by the app factory and handlers."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from service.config import Settings
from service.keyring import Keyring
from service.qr import RenderPool

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
DSN = web.AppKey("dsn", str)
KEYRING = web.AppKey("keyring", Keyring)
QR_POOL = web.AppKey("qr_pool", RenderPool)

# Issue 16 stand-in for issue 14's sealing key (see service/sealing.py).
from service.sealing import Sealer  # noqa: E402

SEALER = web.AppKey("sealer", Sealer)
