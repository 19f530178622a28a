"""Keyset pagination shared by every list.

Lists are ordered by id (ids are time-ordered ULIDs); the cursor is the last id of a
page, wrapped so clients treat it as opaque. Rows inserted while a client walks the
pages never make it skip or repeat a row.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from service.domain.errors import validation_error

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    after_id: str | None = None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The id a cursor points after. Any base64url text (the documented pattern) is a
    position in id order, so a made-up cursor gives a page, maybe an empty one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeError, ValueError):
        raise validation_error("cursor", "not a cursor returned by this list") from None
    return raw.decode("utf-8", "replace").replace("\x00", "")


def page_of(rows: list[Any], page: PageRequest, to_item: Any) -> dict[str, Any]:
    """Build `{items, next_cursor}` from up to limit+1 rows fetched in id order."""
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    items = [to_item(row) for row in rows]
    next_cursor = encode_cursor(rows[-1]["id"]) if has_more and rows else None
    return {"items": items, "next_cursor": next_cursor}
