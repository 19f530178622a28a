"""Card holder categories of the programme (优待证 kinds)."""

HOLDER_CATEGORIES = ("veteran", "disabled_veteran", "martyr_family", "military_family", "other")
