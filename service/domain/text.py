"""Display text (docs/api.md): names, titles, labels, reasons, addresses — anything a page
shows as written. It must read the same in every page that shows it, so it may hold no
control character (C0, DEL, C1: a tab or a newline in a partner's name breaks a line,
a table cell or a CSV row) and no bidirectional override or isolate (U+202A–U+202E,
U+2066–U+2069: `abc\\u202eexe.txt` shows as `abctxt.exe`). The one check of it, for the
schemas, the holder import and anything else that takes such text."""

from __future__ import annotations

import re

from service.domain.errors import validation_error
from service.domain.language import Said

#: The characters display text may not hold, as a regular expression class body (the
#: OpenAPI document states the same as a pattern).
REFUSED_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
#: A long text of several lines (an offer's description) may also break lines.
LINE_BREAKS = "\n\r\t"

#: What display text matches: none of REFUSED_CHARACTERS (ECMA-262 syntax, for OpenAPI).
DISPLAY_TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
#: The same for text of several lines: \t, \n and \r allowed.
MULTILINE_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"

_REFUSED = re.compile(f"[{REFUSED_CHARACTERS}]")

HIDDEN_CHARACTERS = Said(
    "must not contain control characters or bidirectional overrides or isolates "
    "(U+202A–U+202E, U+2066–U+2069)",
    "不得包含控制字符或双向文本覆盖/隔离字符（U+202A–U+202E、U+2066–U+2069）",
)


def display_text_problem(value: str, *, multiline: bool = False) -> Said | None:
    """Why `value` cannot be display text, or None when it can. `multiline` admits tab,
    line feed and carriage return (a description), nothing else."""
    for match in _REFUSED.finditer(value):
        if not (multiline and match.group() in LINE_BREAKS):
            return HIDDEN_CHARACTERS
    return None


def refuse_hidden_characters(field: str, value: str) -> None:
    """validation_error naming `field` when `value` is not display text: for display text
    that reaches a use case past the schemas (`youdai create-staff --name`)."""
    problem = display_text_problem(value)
    if problem is not None:
        raise validation_error(field, problem)
