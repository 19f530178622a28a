"""Scanners preview, redeem and reverse; partners and the bureau read the ledger."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from schemas.common import PageQuerySchema
from schemas.redemptions import (
    PreviewSchema,
    RedeemRequestSchema,
    RedemptionListQuerySchema,
    RedemptionPageSchema,
    RedemptionRequestSchema,
    RedemptionSchema,
    RefusalListQuerySchema,
    RefusalPageSchema,
    RefusalSchema,
    ReversalRequestSchema,
    ReversalSchema,
    TillRedemptionPageSchema,
    TillRedemptionSchema,
    TillSchema,
)
from service import metrics
from service.api.http import (
    caller_as,
    json_response,
    operation,
    page_request,
    page_response,
    principal,
    problem_language,
    read_json,
    read_query,
    read_time_bounds,
)
from service.api.problems import kept_problem_body
from service.app_keys import CLOCK, KEYRING, POOL, SETTINGS
from service.domain import redemptions as redemption_rules
from service.domain.auth import Role, ScannerKey
from service.domain.errors import validation_error
from service.domain.language import Said
from service.flows import redemptions as flow

if TYPE_CHECKING:
    from service.db.redemptions import LedgerEntry, TillEntry

TAGS = ["redemptions"]
IDEMPOTENCY_HEADER = "Idempotency-Key"

_request = RedemptionRequestSchema()
_redeem_request = RedeemRequestSchema()
_reversal_in = ReversalRequestSchema()
_reversal_out = ReversalSchema()
_preview_out = PreviewSchema()
_query = RedemptionListQuerySchema()
_out = RedemptionSchema()
_refusal_query = RefusalListQuerySchema()
_refusal_out = RefusalSchema()
_till_out = TillSchema()
_till_redemption_out = TillRedemptionSchema()
_till_query = PageQuerySchema()

#: Problems a scan can earn, in the order the rules are checked: a code's throttle,
#: then the rules (service.domain.redemptions.RULE_ORDER).
RULE_PROBLEMS = ["too_many_attempts", *redemption_rules.RULE_PROBLEMS]


async def _scan_request(
    request: web.Request, schema: RedemptionRequestSchema = _request
) -> dict[str, Any]:
    body = await read_json(request, schema)
    # A USB scanner types the code and then Enter: surrounding whitespace is not the token.
    for field in ("token", "code"):
        if field in body:
            body[field] = body[field].strip()
    return body


def redemption_view(entry: LedgerEntry) -> dict[str, Any]:
    # created_at is text in RedemptionSchema: the redeem answer, stored for replays, has it so.
    reversal = None
    if entry.reversal_id is not None:
        reversal = {
            "id": entry.reversal_id,
            "created_at": entry.reversed_at,
            "reason": entry.reversal_reason,
            "actor": entry.reversal_actor,
        }
    return _out.dump({**_times(entry), "reversal": reversal})


def _times(entry: LedgerEntry) -> dict[str, Any]:
    """The entry with created_at and offline_at as text, as the redeem answer has them."""
    offline_at = None if entry.offline_at is None else entry.offline_at.isoformat()
    return {**asdict(entry), "created_at": entry.created_at.isoformat(), "offline_at": offline_at}


@operation(
    "What a redemption would grant, or why not (writes nothing)",
    roles=[Role.SCANNER],
    tags=TAGS,
    body=RedemptionRequestSchema,
    responses={200: PreviewSchema},
    problems=RULE_PROBLEMS,
)
async def preview(request: web.Request) -> web.Response:
    body = await _scan_request(request)
    with metrics.counting_token_failures():
        result = await flow.preview(
            request.app[POOL],
            request.app[KEYRING],
            request.app[SETTINGS],
            caller_as(request, ScannerKey),
            body,
            request.app[CLOCK](),
        )
    return json_response(_preview_out.dump(result))


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None or not 1 <= len(key) <= 255:
        message = (
            Said("required, 1 to 255 characters", "必填，1 到 255 个字符")
            if key is None
            else Said("must be 1 to 255 characters", "必须是 1 到 255 个字符")
        )
        raise validation_error(IDEMPOTENCY_HEADER, message)
    return key


@operation(
    "Redeem a voucher once (Idempotency-Key required)",
    roles=[Role.SCANNER],
    tags=TAGS,
    body=RedeemRequestSchema,
    headers=[(IDEMPOTENCY_HEADER, True, "1–255 characters; a retry sends the same key")],
    responses={201: RedemptionSchema},
    problems=[*RULE_PROBLEMS, "idempotency_key_reused", "idempotency_key_in_use"],
)
async def redeem(request: web.Request) -> web.Response:
    """The same key and body again answers the first answer with `Idempotent-Replayed: true`;
    the same key with another body is `idempotency_key_reused`; while the first is still
    running, `idempotency_key_in_use`. Keys are scoped to the scanner's partner, kept 24 h.

    With `offline_at` (a till that redeemed while offline sends it now), a valid token of
    this partner's offer is recorded even where a rule would have refused it online, with
    that rule's code as `conflict` (docs/rules.md)."""
    with metrics.counting_redemption_refusals():
        key = _idempotency_key(request)
        body = await _scan_request(request, _redeem_request)
        answer = await flow.redeem(
            request.app[POOL],
            request.app[KEYRING],
            request.app[SETTINGS],
            caller_as(request, ScannerKey),
            body,
            key,
            request.app[CLOCK](),
        )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    if answer.refused is not None:  # a refusal replayed as it was first answered
        status, problem = kept_problem_body(answer.refused, problem_language(request))
        metrics.redemption_answered(status, problem, answer.replayed)
        response = json_response(problem, status=status, headers=headers)
        response.content_type = "application/problem+json"
        return response
    assert answer.redemption is not None
    metrics.redemption_answered(201, answer.redemption, answer.replayed)
    return json_response(_out.dump(answer.redemption), status=201, headers=headers)


@operation(
    "List redemptions, newest first (a partner sees its own)",
    roles=[Role.ADMIN, Role.PARTNER],
    tags=TAGS,
    query=RedemptionListQuerySchema,
    responses={200: RedemptionPageSchema},
)
async def list_redemptions(request: web.Request) -> web.Response:
    """Filters combine; `key_id` names a till (GET /v1/partners/{id}/keys). A partner
    caller sees its own partner's only: another partner's `partner_id` or `key_id` gives
    an empty page, as an unknown one does, so the answer tells nothing of other partners."""
    query = read_query(request, _query)
    bounds = read_time_bounds(query, request.app[SETTINGS].timezone)
    redemptions = await flow.ledger(
        request.app[POOL],
        principal(request),
        page_request(query),
        query,
        bounds["from"],
        bounds["to"],
    )
    return page_response(redemptions, redemption_view)


@operation(
    "One redemption",
    roles=[Role.ADMIN, Role.PARTNER],
    tags=TAGS,
    responses={200: RedemptionSchema},
    problems=["not_found"],
)
async def get_redemption(request: web.Request) -> web.Response:
    """A partner key sees its own redemptions only (a till reads the answer it was given)."""
    redemption = await flow.get_redemption(
        request.app[POOL], principal(request), request.match_info["redemption_id"]
    )
    return json_response(redemption_view(redemption))


@operation(
    "Reverse a redemption once (a refund)",
    roles=[Role.ADMIN, Role.PARTNER, Role.SCANNER],
    tags=TAGS,
    body=ReversalRequestSchema,
    responses={201: ReversalSchema},
    problems=["not_found", "already_reversed", "reversal_window_closed"],
)
async def reverse(request: web.Request) -> web.Response:
    """The use comes back to the voucher, the budget and the holder's period count.
    The redemption itself is never changed: the reversal is a ledger row of its own."""
    body = await read_json(request, _reversal_in)
    with metrics.counting_reversal_refusals():
        reversal = await flow.reverse(
            request.app[POOL],
            request.app[SETTINGS],
            principal(request),
            request.match_info["redemption_id"],
            body["reason"],
            request.app[CLOCK](),
        )
    metrics.reversal_completed(reversal["discount_amount"])
    return json_response(_reversal_out.dump(reversal), status=201)


@operation(
    "Refused redemptions of known vouchers, newest first (a partner sees its own)",
    roles=[Role.ADMIN, Role.PARTNER],
    tags=TAGS,
    query=RefusalListQuerySchema,
    responses={200: RefusalPageSchema},
)
async def list_refusals(request: web.Request) -> web.Response:
    """Each refusal of a voucher the service knows, at preview or redeem, as pretix keeps
    failed scans: when, which offer, which till key, which problem code; never the holder.
    Refusals of tokens or codes that name no voucher of the partner are not listed."""
    query = read_query(request, _refusal_query)
    page = page_request(query)
    bounds = read_time_bounds(query, request.app[SETTINGS].timezone)
    rows = await flow.list_refusals(
        request.app[POOL], principal(request), page, query, bounds["from"], bounds["to"]
    )
    return page_response(rows, _refusal_out.dump)


@operation(
    "The till this scanner key belongs to: its label and partner",
    roles=[Role.SCANNER],
    tags=TAGS,
    responses={200: TillSchema},
)
async def get_till(request: web.Request) -> web.Response:
    return json_response(
        _till_out.dump(await flow.till(request.app[POOL], caller_as(request, ScannerKey)))
    )


@operation(
    "This till's own redemptions of today, newest first (to reverse one on a refund)",
    roles=[Role.SCANNER],
    tags=TAGS,
    query=PageQuerySchema,
    responses={200: TillRedemptionPageSchema},
)
async def list_till_redemptions(request: web.Request) -> web.Response:
    """Only what this scanner key redeemed since local midnight (programme time zone);
    GET /v1/redemptions stays closed to scanner keys."""
    query = read_query(request, _till_query)
    page = page_request(query)
    rows = await flow.till_today(
        request.app[POOL],
        request.app[SETTINGS],
        caller_as(request, ScannerKey),
        page,
        request.app[CLOCK](),
    )
    return page_response(rows, _till_redemption_view)


def _till_redemption_view(entry: TillEntry) -> dict[str, Any]:
    return _till_redemption_out.dump(_times(entry))
