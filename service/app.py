"""The application factory: middlewares, the route table, and the resources opened
and closed with the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator

from aiohttp import web

from service import metrics
from service.api import (
    applications,
    audit,
    directory,
    directory_page,
    docs,
    health,
    holder_imports,
    holders,
    join_page,
    jwks,
    keys,
    ledger,
    me,
    offers,
    partners,
    redemptions,
    reports,
    staff,
    till,
    vouchers,
)
from service.api import console as console_api
from service.api import metrics as metrics_api
from service.api import pages as pages_api
from service.api.middleware import (
    answer_parser_errors_as_problems,
    authenticate,
    common_headers,
    request_context,
)
from service.app_keys import (
    CLOCK,
    DSN,
    IMPORTS,
    KEY_CACHE,
    KEYRING,
    POOL,
    QR_POOL,
    SEALER,
    SETTINGS,
    STOPPING,
)
from service.clock import Clock, system_clock
from service.config import Settings
from service.flows import housekeeping
from service.flows import ledger as ledger_flow
from service.flows.database import create_pool
from service.flows.holder_imports import ImportJobs
from service.flows.key_cache import KeyCache
from service.flows.keyring import Keyring
from service.qr import RenderPool

log = logging.getLogger("youdai.housekeeping")

#: Bodies above 1 MiB are never read: a JSON body answers validation_error, anything else 413.
MAX_BODY_BYTES = 1024 * 1024


def routes() -> list[web.AbstractRouteDef]:
    """Every route of the service, top to bottom."""
    return [
        # operations
        web.get("/healthz", health.healthz),
        web.get("/readyz", health.readyz),
        # metrics
        web.get("/metrics", metrics_api.metrics_text),
        *docs.docs_routes(),
        web.get("/.well-known/jwks.json", jwks.jwks),
        web.get("/v1/directory", directory.directory),
        web.get("/directory", directory_page.directory_page),
        # enterprises that ask to join, and the bureau's decisions
        web.post("/v1/partner-applications", applications.create_application),
        web.get("/v1/partner-applications", applications.list_applications),
        web.get("/v1/partner-applications/{application_id}", applications.get_application),
        web.post(
            "/v1/partner-applications/{application_id}/approval",
            applications.approve_application,
        ),
        web.post(
            "/v1/partner-applications/{application_id}/rejection",
            applications.reject_application,
        ),
        web.get("/join", join_page.join_page),
        web.post("/join", join_page.join_submit),
        web.get("/join/status", join_page.join_status),
        # pages
        *pages_api.page_routes(),
        *console_api.console_routes(),
        # partners and their keys (bureau)
        web.post("/v1/partners", partners.create_partner),
        web.get("/v1/partners", partners.list_partners),
        web.get("/v1/partners/{partner_id}", partners.get_partner),
        web.patch("/v1/partners/{partner_id}", partners.update_partner),
        web.post("/v1/partners/{partner_id}/keys", keys.create_key),
        web.get("/v1/partners/{partner_id}/keys", keys.list_keys),
        web.delete("/v1/keys/{key_id}", keys.revoke_key),
        web.get("/v1/audit-events", audit.list_audit_events),
        # holders (bureau)
        web.post("/v1/holders", holders.create_holder),
        web.get("/v1/holders", holders.list_holders),
        web.post("/v1/holders/import", holder_imports.import_holders),
        web.get("/v1/holder-imports/{import_id}", holder_imports.get_holder_import),
        web.get("/v1/holders/{holder_id}", holders.get_holder),
        web.patch("/v1/holders/{holder_id}", holders.update_holder),
        # offers (partners for themselves, the bureau for any)
        web.post("/v1/offers", offers.create_offer),
        web.get("/v1/offers", offers.list_offers),
        web.get("/v1/offers/{offer_id}", offers.get_offer),
        web.patch("/v1/offers/{offer_id}", offers.update_offer),
        # vouchers: the holder's own side, and the service desk
        web.post("/v1/holder-sessions", me.create_session),
        web.delete("/v1/me/session", me.end_session),
        web.get("/v1/me", me.get_me),
        web.get("/v1/me/offers", me.list_my_offers),
        web.post("/v1/me/vouchers", me.claim_voucher),
        web.get("/v1/me/vouchers", me.list_my_vouchers),
        web.get("/v1/me/vouchers/{voucher_id}", me.get_my_voucher),
        web.get("/v1/me/vouchers/{voucher_id}/token", me.voucher_token),
        web.get("/v1/me/vouchers/{voucher_id}/qr.png", me.voucher_qr_png),
        web.get("/v1/me/vouchers/{voucher_id}/qr.svg", me.voucher_qr_svg),
        web.get("/v1/me/vouchers/{voucher_id}/barcode.svg", me.voucher_barcode_svg),
        web.post("/v1/vouchers", vouchers.issue_voucher),
        # redemption (scanners) and the ledger
        web.post("/v1/redemptions/preview", redemptions.preview),
        web.post("/v1/redemptions", redemptions.redeem),
        web.get("/v1/redemptions", redemptions.list_redemptions),
        web.get("/v1/redemptions/{redemption_id}", redemptions.get_redemption),
        web.post("/v1/redemptions/{redemption_id}/reversal", redemptions.reverse),
        web.get("/v1/redemption-refusals", redemptions.list_refusals),
        web.get("/v1/till", redemptions.get_till),
        web.get("/v1/till/redemptions", redemptions.list_till_redemptions),
        web.get("/v1/till/pack", till.pack),
        # reports
        web.get("/v1/reports/discounts", reports.discounts),
        web.get("/v1/reports/summary", reports.summary),
        web.get("/v1/reports/statement", reports.statement),
        web.get("/v1/reports/statement/qr.svg", reports.statement_digest_qr),
        # the tamper-evident log (docs/ledger.md)
        web.get("/v1/ledger/checkpoint", ledger.checkpoint),
        web.get("/v1/ledger/entries", ledger.entries),
        web.get("/v1/ledger/proofs/inclusion", ledger.inclusion_proof),
        web.get("/v1/ledger/proofs/consistency", ledger.consistency_proof),
        # staff: people signing in with a cookie session (docs/staff.md)
        web.post("/v1/staff-sessions", staff.sign_in),
        web.delete("/v1/staff-sessions/current", staff.sign_out),
        web.get("/v1/staff/me", staff.get_staff_me),
        web.post("/v1/staff/me/totp", staff.enrol_totp),
        web.get("/v1/staff/me/totp/qr.svg", staff.totp_qr_svg),
        web.post("/v1/staff/me/totp/confirm", staff.confirm_totp),
        web.post("/v1/staff/setup", staff.set_up_staff),
        web.post("/v1/staff", staff.invite_staff),
        web.get("/v1/staff", staff.list_staff),
        web.get("/v1/staff/{staff_id}", staff.get_staff),
        web.patch("/v1/staff/{staff_id}", staff.update_staff),
    ]


def create_app(settings: Settings, dsn: str, *, clock: Clock = system_clock) -> web.Application:
    app = web.Application(
        middlewares=[request_context, authenticate],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS] = settings
    app[DSN] = dsn
    app[CLOCK] = clock
    app[SEALER] = settings.sealer()
    app[KEYRING] = Keyring(settings.token_ttl, app[SEALER])
    app[STOPPING] = asyncio.Event()
    app.add_routes(routes())
    app.on_response_prepare.append(common_headers)
    app.on_response_prepare.append(close_connections_when_stopping)
    answer_parser_errors_as_problems()
    app[docs.OPENAPI_KEY] = docs.build_openapi(app)
    app.cleanup_ctx.append(_database_pool)
    app.cleanup_ctx.append(_key_cache)
    app.cleanup_ctx.append(_qr_render_pool)
    app.cleanup_ctx.append(_housekeeping)
    app.cleanup_ctx.append(_holder_imports)
    app.cleanup_ctx.append(_ledger_sequencer)
    if metrics.MULTIPROCESS:
        app.cleanup_ctx.append(_pool_gauges)
    return app


async def close_connections_when_stopping(
    request: web.Request, response: web.StreamResponse
) -> None:
    """After SIGTERM every answer closes its connection: a client that keeps connections
    alive opens its next one wherever the load balancer now sends it, rather than
    sending it to a process about to stop listening."""
    if request.app[STOPPING].is_set():
        response.force_close()  # aiohttp closes the connection after this answer
        response.headers["Connection"] = "close"  # and says so (headers are made by now)


async def _database_pool(app: web.Application) -> AsyncIterator[None]:
    app[POOL] = await create_pool(app[SETTINGS], app[DSN])
    yield
    await app[POOL].close()


async def _key_cache(app: web.Application) -> AsyncIterator[None]:
    """The verified API keys of this process, and the connection that listens for their
    changes (service/flows/key_cache.py)."""
    app[KEY_CACHE] = KeyCache(app[DSN])
    await app[KEY_CACHE].start()
    yield
    await app[KEY_CACHE].close()


async def _qr_render_pool(app: web.Application) -> AsyncIterator[None]:
    app[QR_POOL] = RenderPool(server_processes=app[SETTINGS].workers)
    yield
    await app[QR_POOL].close()


async def _holder_imports(app: web.Application) -> AsyncIterator[None]:
    """The holder import this process runs, if any: stopped (it ends failed, nothing
    written) when the app shuts down, before the pool closes."""
    app[IMPORTS] = ImportJobs(app[DSN])
    yield
    await app[IMPORTS].close()


async def _ledger_sequencer(app: web.Application) -> AsyncIterator[None]:
    """This process's turn at appending the ledger to the tamper-evident log and signing
    checkpoints: one process at a time, under an advisory lock (service/flows/ledger.py)."""
    task = asyncio.create_task(
        ledger_flow.run_sequencer(app[POOL], app[KEYRING], app[SETTINGS], clock=app[CLOCK])
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


#: Seconds between refreshes of this worker's pool gauges in the shared metrics files.
POOL_GAUGE_INTERVAL = 1.0


async def _pool_gauges(app: web.Application) -> AsyncIterator[None]:
    """With several workers, /metrics is answered by one of them: each keeps its own pool
    figures current in the shared files so the sum stays right."""

    async def refresh() -> None:
        while True:
            metrics.record_pool(app[POOL])
            await asyncio.sleep(POOL_GAUGE_INTERVAL)

    task = asyncio.create_task(refresh())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


#: How often each process forgets what no longer counts (see _housekeeping).
HOUSEKEEPING_INTERVAL = 600.0


async def _housekeeping(app: web.Application) -> AsyncIterator[None]:
    """Every few minutes, forget Idempotency-Keys past their 24 hours and guesses at
    unknown card numbers whose window and lock are over."""

    async def forget_what_no_longer_counts() -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL * random.uniform(0.5, 1.5))
            try:
                removed = await housekeeping.forget_what_no_longer_counts(app[POOL])
                if any(removed.values()):
                    log.info("forgot what no longer counts", extra=removed)
            except Exception:  # the database may be away; try again next time
                log.warning("housekeeping failed", exc_info=True)

    task = asyncio.create_task(forget_what_no_longer_counts())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
