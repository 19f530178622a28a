"""The one error type of the service and its stable codes.

Clients (tills, phones, scripts) act on `code`, so codes never change meaning.
A middleware renders every ApiError as application/problem+json (RFC 9457).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.domain import messages
from service.domain.language import CHINESE, ENGLISH, Said

#: code -> (HTTP status, title). The title is a short English summary; `detail` says more.
CODES: dict[str, tuple[int, str]] = {
    "validation_error": (422, "The request is not valid"),
    "below_min_purchase": (422, "The purchase is below the offer's minimum"),
    "token_invalid": (422, "The voucher token is not valid"),
    "token_expired": (422, "The voucher token has expired"),
    "token_not_yet_valid": (422, "The voucher token is not valid yet"),
    "idempotency_key_reused": (422, "The Idempotency-Key was used with another request"),
    "bad_request": (400, "Bad request"),
    "unauthenticated": (401, "Authentication is required"),
    "totp_required": (401, "A second-factor code is required"),
    "forbidden": (403, "Not allowed for this caller"),
    "csrf_failed": (403, "The CSRF token is missing or wrong"),
    "wrong_partner": (403, "The voucher belongs to another partner"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "payload_too_large": (413, "The request body is too large"),
    "unsupported_media_type": (415, "Unsupported media type"),
    "not_acceptable": (406, "No acceptable representation"),
    "voucher_used_up": (409, "The voucher has no uses left"),
    "voucher_expired": (409, "The voucher has expired"),
    "voucher_revoked": (409, "The voucher has been revoked"),
    "holder_ineligible": (409, "The card holder is not eligible for this offer"),
    "holder_inactive": (409, "The card holder is not active"),
    "offer_inactive": (409, "The offer is not active"),
    "partner_inactive": (409, "The partner is not active"),
    "offer_exhausted": (409, "The offer has no redemptions left"),
    "budget_exhausted": (409, "The offer's budget is spent"),
    "holder_limit_reached": (409, "The card holder has reached the offer's limit"),
    "already_reversed": (409, "The redemption has already been reversed"),
    "reversal_window_closed": (409, "The redemption is too old to reverse"),
    "idempotency_key_in_use": (409, "A request with this Idempotency-Key is still running"),
    "conflict": (409, "Conflict"),
    "too_many_attempts": (429, "Too many attempts"),
    "internal_error": (500, "Internal error"),
    "database_unavailable": (503, "The database is unavailable"),
    "not_ready": (503, "The service is not ready"),
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
        self.status, self.title = CODES[code]
        self.detail = detail or self.title
        self.errors = errors or []
        self.headers = headers or {}
        #: Further members of the problem (RFC 9457 extensions), e.g. `error_count`.
        self.extra = extra or {}
        super().__init__(f"{code}: {self.detail}")

    def problem(self, language: str = ENGLISH) -> dict[str, Any]:
        """The problem+json body, its title, detail and messages in `language` (docs/api.md:
        Chinese or English); `code` and `field` the same in both. A detail with no Chinese
        of its own is the Chinese title."""
        title = messages.title(self.code, self.title, language)
        detail = title if self.detail == self.title else messages.localize(self.detail, language)
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": title,
            "status": self.status,
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


def problem_to_store(error: ApiError) -> dict[str, Any]:
    """A problem to keep and answer again later: in English, and in Chinese beside."""
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
