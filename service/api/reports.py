"""Reports: the exact discount totals and the programme's headline figures."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from schemas.report_files import to_csv, to_xlsx
from schemas.reports import (
    DiscountReportQuerySchema,
    DiscountReportSchema,
    StatementDigestQuerySchema,
    StatementQuerySchema,
    StatementSchema,
    SummaryQuerySchema,
    SummarySchema,
)
from service import qr
from service.api.http import json_response, operation, principal, read_query
from service.app_keys import CLOCK, DSN, KEYRING, POOL, QR_POOL, SETTINGS
from service.background import run_in_background
from service.domain.auth import Principal, Role
from service.domain.errors import validation_error
from service.domain.language import Said
from service.domain.reports import (
    MEDIA_TYPES,
    Period,
    filename,
    negotiate,
    parse_group_by,
    period_of,
)
from service.flows import reports as reports_flow
from service.flows import statement as statement_flow

TAGS = ["reports"]

_discounts_query = DiscountReportQuerySchema()
_summary_query = SummaryQuerySchema()
_report_out = DiscountReportSchema()
_summary_out = SummarySchema()
_statement_query = StatementQuerySchema()
_statement_out = StatementSchema()
_digest_query = StatementDigestQuerySchema()

_FILE_HEADERS = {
    "Content-Disposition": {
        "description": "attachment; filename=youdai-discounts-FROM-TO.csv (or .xlsx)",
        "schema": {"type": "string"},
    }
}
_DISCOUNT_RESPONSES = {
    200: {
        "description": "The report: JSON, or a file with the same rows and a totals row",
        "content": {
            MEDIA_TYPES["json"]: {"schema": DiscountReportSchema},
            MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
            MEDIA_TYPES["xlsx"]: {"schema": {"type": "string", "format": "binary"}},
        },
        "headers": _FILE_HEADERS,
    }
}


@operation(
    "Discount totals by partner, offer, holder category and month (JSON, CSV, XLSX)",
    roles=[Role.ADMIN, Role.PARTNER],
    tags=TAGS,
    query=DiscountReportQuerySchema,
    headers=[
        (
            "Accept",
            False,
            "application/json (default), text/csv or "
            f"{MEDIA_TYPES['xlsx']}; the `format` parameter wins over it",
            {"type": "string", "enum": [*MEDIA_TYPES.values(), "*/*"]},
        )
    ],
    responses=_DISCOUNT_RESPONSES,
    problems=["not_acceptable"],
)
async def discounts(request: web.Request) -> web.StreamResponse:
    """Totals are exact and net: `redemptions` and `purchase_total`/`discount_total` count
    the redemptions made in the period, minus the reversals made in the period. **A reversal
    counts in the month (and on the day) on which it was made**, not in the redemption's
    month, so a month already reported never changes. Months and `from`/`to` are calendar
    dates in the programme's time zone (YOUDAI_TIMEZONE, default Asia/Shanghai). Money is in
    fen; files also carry yuan. Only groups with a redemption or reversal in the period
    appear; without `group_by` there is one row, equal to `totals`.

    An admin key sees every partner; a partner key only its own partner's rows, whatever
    `partner_id` or `offer_id` it sends."""
    query = read_query(request, _discounts_query)
    fmt = negotiate(query.get("format"), request.headers.get("Accept"))
    period = period_of(
        query.get("from_"), query.get("to"), request.app[CLOCK](), request.app[SETTINGS].timezone
    )
    caller, group_by = principal(request), parse_group_by(query.get("group_by"))
    partner_id, offer_id = query.get("partner_id"), query.get("offer_id")
    if fmt == "json":
        report = await reports_flow.discount_report(
            request.app[POOL], caller, period, group_by, partner_id=partner_id, offer_id=offer_id
        )
        return json_response(_report_out.dump(report))
    # A year's file is a second of pure Python, and its rows tens of milliseconds to decode
    # and hand on: here they would hold the GIL that this process's tills wait for. In a
    # background process (service.background), reading on its own connection, tills come
    # first.
    body = await run_in_background(
        _report_file, fmt, request.app[DSN], caller, period, group_by, partner_id, offer_id
    )
    response = web.Response(
        body=body,
        content_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename(period, fmt)}"',
        },
    )
    if fmt == "csv":
        response.charset = "utf-8"
    return response


def _report_file(
    fmt: str,
    dsn: str,
    caller: Principal,
    period: Period,
    group_by: tuple[str, ...],
    partner_id: str | None,
    offer_id: str | None,
) -> bytes:
    """In a background process: the report read on a connection of its own, as a file."""
    report = reports_flow.discount_report_apart(
        dsn, caller, period, group_by, partner_id=partner_id, offer_id=offer_id
    )
    return to_csv(report) if fmt == "csv" else to_xlsx(report)


@operation(
    "The programme's headline figures for a period",
    roles=[Role.ADMIN],
    tags=TAGS,
    query=SummaryQuerySchema,
    responses={200: SummarySchema},
)
async def summary(request: web.Request) -> web.Response:
    """Partners enrolled by the end of the period (and of them, active now), by partner
    category; card holders enrolled by the end of the period; vouchers issued, redemptions,
    reversals and the total discount value (fen, net of reversals) in the period — the
    same total as GET /v1/reports/discounts for the same dates. The period is calendar
    dates in the programme's time zone; default: this calendar year."""
    query = read_query(request, _summary_query)
    tz = request.app[SETTINGS].timezone
    period = period_of(query.get("from_"), query.get("to"), request.app[CLOCK](), tz)
    headline = await reports_flow.summary(request.app[POOL], period, tz)
    return json_response(_summary_out.dump(headline))


@operation(
    "The signed statement of a period: the figures an auditor checks with a public key",
    roles=[Role.ADMIN],
    tags=TAGS,
    query=StatementQuerySchema,
    responses={200: StatementSchema},
    problems=["conflict"],
)
async def statement(request: web.Request) -> web.Response:
    """`year`, or `from`/`to` (calendar dates in the programme's time zone). Its figures
    are those of GET /v1/reports/summary and GET /v1/reports/discounts for the same period,
    fen for fen; its log holds every entry of the period. A period not yet over is stated
    as of now, with `final: false`. `conflict` when the stored log no longer proves itself
    consistent with the checkpoints signed before (nothing is signed then)."""
    query = read_query(request, _statement_query)
    settings = request.app[SETTINGS]
    now = request.app[CLOCK]()
    first: date | None = query.get("from_")
    last: date | None = query.get("to")
    if "year" in query:
        if first or last:
            raise validation_error(
                "year", Said("give either year or from/to", "请只给出 year，或只给出 from/to")
            )
        first, last = date(query["year"], 1, 1), date(query["year"], 12, 31)
    period = period_of(first, last, now, settings.timezone)
    signed = await statement_flow.statement(
        request.app[POOL], request.app[KEYRING], settings, period, now
    )
    return json_response(_statement_out.dump({"statement": signed}))


@operation(
    "A QR code of a statement's SHA-256 digest, for the printed statement",
    roles=[Role.ADMIN],
    tags=TAGS,
    query=StatementDigestQuerySchema,
    responses={
        200: {"description": "SVG", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}
    },
)
async def statement_digest_qr(request: web.Request) -> web.Response:
    """The QR reads `sha256:<digest>`: whoever holds the statement file can match the
    printed page to it (`sha256sum` of the JWS)."""
    digest = read_query(request, _digest_query)["digest"]
    image = await request.app[QR_POOL].render(qr.svg, f"sha256:{digest}")
    return web.Response(body=image, content_type="image/svg+xml")
