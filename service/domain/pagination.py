"""Keyset pagination shared by every list.

Lists are ordered by id (ids are time-ordered ULIDs); the cursor is the last id of a
page, wrapped so clients treat it as opaque. Rows inserted while a client walks the
pages never make it skip or repeat a row.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from service.domain.errors import validation_error
from service.domain.language import Said

Item = TypeVar("Item")

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
        raise validation_error(
            "cursor", Said("not a cursor returned by this list", "不是此列表返回的游标")
        ) from None
    return raw.decode("utf-8", "replace").replace("\x00", "")


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    """One page of a list and the cursor of the next page (None on the last)."""

    items: list[Item]
    next_cursor: str | None


def page_of(rows: list[Item], page: PageRequest) -> Page[Item]:
    """The page of up to limit+1 rows fetched in id order (the extra row says there is more)."""
    has_more = len(rows) > page.limit
    items = rows[: page.limit]
    next_cursor = encode_cursor(_id_of(items[-1])) if has_more and items else None
    return Page(items, next_cursor)


def _id_of(row: Any) -> str:
    """The id of a typed value, or of a mapping row (an asyncpg record or a dict)."""
    try:
        return str(row.id)
    except AttributeError:
        return str(row["id"])
