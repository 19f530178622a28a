"""The one clock of the service: flows read the time from a `Clock` their caller passes
in (the app's `CLOCK`, the command line's `system_clock`), so a test sets the hour
instead of waiting for it (pretix's `perform_checkin(..., datetime=...)`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: Answers the time now, aware, in UTC.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The machine's time, in UTC."""
    return datetime.now(UTC)
