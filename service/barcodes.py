"""Code 128 barcodes of voucher codes, for tills whose laser scanner reads only 1D codes.

python-barcode draws them: a maintained, pure-Python library (no Pillow needed for SVG)
that picks Code 128's digit-pair set C for an all-digit code, so 18 digits become 9
symbols + start, check and stop: 101 modules plus the quiet zones. Bars are 0.4 mm wide
units in the SVG (scaled by the page), 15 mm tall; no human-readable line under the
bars — the page shows the code itself in large grouped digits.
"""

from __future__ import annotations

import io

import barcode
from barcode.writer import SVGWriter

#: Options for the SVG writer (millimetres): quiet zone of 10 modules each side (ISO/IEC 15417).
_OPTIONS = {
    "module_width": 0.4,
    "module_height": 15.0,
    "quiet_zone": 4.0,
    "write_text": False,
    "background": "white",
    "foreground": "black",
}


class _DigitsCode128(barcode.Code128):  # type: ignore[misc, unused-ignore]
    """Code 128 of digits only, always in set C from the start symbol on.

    python-barcode (0.16) starts every code in set C and then "optimises" a start symbol
    followed by a switch into the other start symbol, recognising the switch by its
    value alone: set C's pair "99" has the value of the switch to C, so a code beginning
    with 99 lost those two digits (one voucher code in a hundred drew 16 digits). A code
    of digits never switches, so there is nothing to optimise."""

    def _try_to_optimize(self, encoded: list[int]) -> list[int]:
        return encoded


def code128_svg(code: str) -> bytes:
    """The code (digits, an even number of them) as a Code 128 barcode, an SVG document."""
    if not (code.isdigit() and code.isascii() and len(code) % 2 == 0):
        raise ValueError("a voucher code is an even number of digits")
    out = io.BytesIO()
    _DigitsCode128(code, writer=SVGWriter()).write(out, options=_OPTIONS)
    return out.getvalue()
