"""Problems in HTTP: the status each code answers (the one table) and the
application/problem+json body (RFC 9457). The domain's errors carry a code and a detail;
which status they answer is decided here, in the API, once."""

from __future__ import annotations

from typing import Any

from service.domain.errors import ApiError, stored_problem
from service.domain.language import ENGLISH

#: code -> HTTP status (docs/codes.md). Every code of service.domain.errors.CODES has one.
STATUS: dict[str, int] = {
    "validation_error": 422,
    "below_min_purchase": 422,
    "token_invalid": 422,
    "token_expired": 422,
    "token_not_yet_valid": 422,
    "idempotency_key_reused": 422,
    "bad_request": 400,
    "unauthenticated": 401,
    "totp_required": 401,
    "forbidden": 403,
    "csrf_failed": 403,
    "wrong_partner": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "not_acceptable": 406,
    "voucher_used_up": 409,
    "voucher_expired": 409,
    "voucher_revoked": 409,
    "holder_ineligible": 409,
    "holder_inactive": 409,
    "offer_inactive": 409,
    "partner_inactive": 409,
    "offer_exhausted": 409,
    "budget_exhausted": 409,
    "holder_limit_reached": 409,
    "already_reversed": 409,
    "reversal_window_closed": 409,
    "idempotency_key_in_use": 409,
    "conflict": 409,
    "too_many_attempts": 429,
    "internal_error": 500,
    "database_unavailable": 503,
    "not_ready": 503,
}


def status_of(error: ApiError) -> int:
    return STATUS[error.code]


def problem_body(
    error: ApiError, language: str = ENGLISH, *, status: int | None = None
) -> dict[str, Any]:
    """The problem+json body: the domain's members with the HTTP `status` after the title
    (`status` given: an answer aiohttp's parser chose, e.g. 431)."""
    return _with_status(error.problem(language), status or status_of(error))


def kept_problem_body(kept: dict[str, Any], language: str) -> tuple[int, dict[str, Any]]:
    """A problem kept for replay (a refused redemption, errors.problem_to_keep) as it is
    answered again: its status from its code, as when it was first answered."""
    members = dict(stored_problem(kept, language))
    status = STATUS[members["code"]]
    members.pop("status", None)  # kept with it before migration 0024: the same number
    return status, _with_status(members, status)


def _with_status(members: dict[str, Any], status: int) -> dict[str, Any]:
    """A problem's members with `status` after the title, in RFC 9457's order."""
    return {"type": members.pop("type"), "title": members.pop("title"), "status": status, **members}
