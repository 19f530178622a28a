"""The two languages a problem is said in (docs/api.md): Chinese when the caller's
Accept-Language prefers `zh`, English otherwise; `code` and `field` never change.

Text the service writes is a `Said`: a `str` (the English, so logs, tests and the CLI
read it as before) that carries its Chinese. Text marshmallow writes is a `Keyed`: its
English message with the key it was made from (`Integer.invalid`, `Length.message_max`,
…) and
the values put into it, so the Chinese comes from `service.domain.messages` by key, never
by matching the English words.
"""

from __future__ import annotations

from typing import Any

ENGLISH = "en"
CHINESE = "zh"


class Said(str):
    """English text (the string itself) and the same said in Chinese (`zh`)."""

    zh: str

    def __new__(cls, english: str, chinese: str) -> Said:
        said = super().__new__(cls, english)
        said.zh = chinese
        return said

    def __reduce__(self) -> tuple[type[Said], tuple[str, str]]:
        # Both languages survive pickling: a file checked in a background process
        # (service.background) sends its errors back to the server.
        return (Said, (str(self), self.zh))

    def format(self, *args: object, **kwargs: Any) -> Said:
        """As str.format, in both languages (marshmallow formats a validator's `error`)."""
        return Said(str.format(self, *args, **kwargs), self.zh.format(*args, **kwargs))


class Keyed(str):
    """A message template of marshmallow's, or the message made from it: the English text
    (the string itself), the `key` it is known by and the `params` formatted into it."""

    key: str
    params: dict[str, Any]

    def __new__(cls, english: str, key: str, params: dict[str, Any] | None = None) -> Keyed:
        keyed = super().__new__(cls, english)
        keyed.key = key
        keyed.params = params or {}
        return keyed

    def __reduce__(self) -> tuple[type[Keyed], tuple[str, str, dict[str, Any]]]:
        return (Keyed, (str(self), self.key, self.params))

    def format(self, *args: object, **kwargs: Any) -> Keyed:
        """As str.format (marshmallow formats its templates so), keeping key and values."""
        return Keyed(str.format(self, *args, **kwargs), self.key, {**self.params, **kwargs})


def message_of(error: Exception) -> str:
    """An exception's message as raised: a `Said` keeps its Chinese (str() would drop it)."""
    if len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)
