"""The one error type of the service and its stable codes.

Clients (tills, phones, scripts) act on `code`, so codes never change meaning. An error
carries a code, a detail and its field errors, never an HTTP status: service/api/problems.py
maps each code to its status and renders application/problem+json (RFC 9457).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.domain import messages
from service.domain.language import CHINESE, ENGLISH, Said

#: code -> title: a short English summary of the problem (`detail` says more). Which HTTP
#: status answers a code is the API's business: service/api/problems.py.
CODES: dict[str, str] = {
    "validation_error": "The request is not valid",
    "below_min_purchase": "The purchase is below the offer's minimum",
    "token_invalid": "The voucher token is not valid",
    "token_expired": "The voucher token has expired",
    "token_not_yet_valid": "The voucher token is not valid yet",
    "idempotency_key_reused": "The Idempotency-Key was used with another request",
    "bad_request": "Bad request",
    "unauthenticated": "Authentication is required",
    "totp_required": "A second-factor code is required",
    "forbidden": "Not allowed for this caller",
    "csrf_failed": "The CSRF token is missing or wrong",
    "wrong_partner": "The voucher belongs to another partner",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "payload_too_large": "The request body is too large",
    "unsupported_media_type": "Unsupported media type",
    "not_acceptable": "No acceptable representation",
    "voucher_used_up": "The voucher has no uses left",
    "voucher_expired": "The voucher has expired",
    "voucher_revoked": "The voucher has been revoked",
    "holder_ineligible": "The card holder is not eligible for this offer",
    "holder_inactive": "The card holder is not active",
    "offer_inactive": "The offer is not active",
    "partner_inactive": "The partner is not active",
    "offer_exhausted": "The offer has no redemptions left",
    "budget_exhausted": "The offer's budget is spent",
    "holder_limit_reached": "The card holder has reached the offer's limit",
    "already_reversed": "The redemption has already been reversed",
    "reversal_window_closed": "The redemption is too old to reverse",
    "idempotency_key_in_use": "A request with this Idempotency-Key is still running",
    "conflict": "Conflict",
    "too_many_attempts": "Too many attempts",
    "internal_error": "Internal error",
    "database_unavailable": "The database is unavailable",
    "not_ready": "The service is not ready",
}

PROBLEM_TYPE_BASE = "https://youdai.example/problems/"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    line: int | None = None

    def as_dict(self, language: str = ENGLISH) -> dict[str, Any]:
        """The entry of a problem's `errors`; its message in `language`, its field never."""
        message = messages.field_message(self.message, language)
        entry: dict[str, Any] = {"field": self.field, "message": message}
        if self.line is not None:
            entry = {"line": self.line, **entry}
        return entry


class ApiError(Exception):
    """A refusal with a stable machine-readable code."""

    def __init__(
        self,
        code: str,
        detail: str | None = None,  # a Said to be said in Chinese too
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown problem code {code!r}")
        self.code = code
        self.title = CODES[code]
        self.detail = detail or self.title
        self.errors = errors or []
        #: What the client may act on beside the code (Retry-After, Allow).
        self.headers = headers or {}
        #: Further members of the problem (RFC 9457 extensions), e.g. `error_count`.
        self.extra = extra or {}
        super().__init__(f"{code}: {self.detail}")

    def problem(self, language: str = ENGLISH) -> dict[str, Any]:
        """The problem's members but `status` (the API adds it): title, detail and messages
        in `language` (docs/api.md: Chinese or English); `code` and `field` the same in
        both. A detail with no Chinese of its own is the Chinese title."""
        title = messages.title(self.code, self.title, language)
        detail = title if self.detail == self.title else messages.localize(self.detail, language)
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": title,
            "detail": detail or title,
            "code": self.code,
        }
        if self.errors:
            body["errors"] = [error.as_dict(language) for error in self.errors]
        body.update(self.extra)
        return body


#: The member under which a problem kept for replay (a refused redemption) keeps its
#: Chinese, so a retry is answered in its own caller's language.
STORED_CHINESE = "_zh"


def problem_to_keep(error: ApiError) -> dict[str, Any]:
    """A problem to keep and answer again later (a refused redemption): its members in
    English, and in Chinese beside; the API gives it its status from the code, as it
    does every problem."""
    return {**error.problem(ENGLISH), STORED_CHINESE: error.problem(CHINESE)}


def stored_problem(body: dict[str, Any], language: str) -> dict[str, Any]:
    """A kept problem as answered in `language` (one kept before it had its Chinese is
    answered as it was kept)."""
    chinese = body.get(STORED_CHINESE)
    if language == CHINESE and isinstance(chinese, dict):
        return chinese
    return {name: value for name, value in body.items() if name != STORED_CHINESE}


def validation_error(field: str, message: str) -> ApiError:
    """422 validation_error naming one bad field (docs/api.md)."""
    return field_errors([FieldError(field, message)])


def field_errors(errors: Sequence[FieldError]) -> ApiError:
    """422 validation_error naming every bad field; the detail repeats the first five."""
    detail = Said(
        "; ".join(f"{error.field}: {error.message}" for error in errors[:5]),
        "；".join(
            f"{error.field}：{messages.field_message(error.message, CHINESE)}"
            for error in errors[:5]
        ),
    )
    return ApiError("validation_error", detail, errors=list(errors))
