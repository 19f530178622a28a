"""Content negotiation (RFC 9110 12.4-12.5): one parser of the weighted lists Accept and
Accept-Language send, and the two choices the service makes from them (a report's media
type, a page's language)."""

from __future__ import annotations

import re
from collections.abc import Mapping

#: A weight is 0 to 1 with at most three decimals (RFC 9110 12.4.2). A malformed one
#: counts as 0, so a typo can never make a client prefer what it did not ask for.
_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")

#: A language range (RFC 4647 2.1): a primary tag of letters, or "*", then subtags.
_LANGUAGE_RANGE = re.compile(r"^([a-z]{1,8}|\*)(?:-[a-z0-9]{1,8})*$")


def weighted(header: str | None) -> list[tuple[str, float]]:
    """The items of a weighted list, lower-cased and without their other parameters,
    each with its q (1 when absent), in the header's order."""
    items: list[tuple[str, float]] = []
    for item in (header or "").split(","):
        value, *params = (part.strip() for part in item.split(";"))
        if not value:
            continue
        q = 1.0
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "q":
                raw = raw.strip()
                q = float(raw) if _QVALUE.match(raw) else 0.0
        items.append((value.lower(), q))
    return items


def media_quality(media_type: str, accept: str | None) -> float:
    """The q an Accept header gives `media_type`: the most specific range that matches
    wins (type/subtype over type/* over */*), 0 when none does."""
    kind = media_type.split("/")[0]
    specificity_of = {media_type: 2, f"{kind}/*": 1, "*/*": 0}
    found: tuple[int, float] | None = None  # (specificity, q)
    for media_range, q in weighted(accept):
        specificity = specificity_of.get(media_range)
        if specificity is not None and (found is None or specificity > found[0]):
            found = (specificity, q)
    return found[1] if found is not None else 0.0


def preferred_language(
    accept_language: str | None, by_primary_tag: Mapping[str, str], default: str
) -> str:
    """The language to answer in: the heaviest range whose primary tag we have ("*" is
    the default); equal weights keep the header's order; the default when none fits."""
    best, best_q = default, 0.0
    for language_range, q in weighted(accept_language):
        match = _LANGUAGE_RANGE.match(language_range)
        if not match:
            continue
        primary = match.group(1)
        language = default if primary == "*" else by_primary_tag.get(primary)
        if language is not None and q > best_q:
            best, best_q = language, q
    return best
