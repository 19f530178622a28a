"""Start-up logs only what an operator can act on."""

from __future__ import annotations

import subprocess
import sys

WITHOUT_PILLOW = """
import sys
sys.modules["PIL"] = None  # as in the image, which does not ship Pillow
from service.logs import configure_logging
configure_logging("json", "INFO")
import service.app  # imports what every process imports, the barcodes among them
import service.barcodes
"""


def test_no_pillow_line_at_start_where_pillow_is_not_installed() -> None:
    """python-barcode logs "Pillow not found" at import; youdai draws SVG and needs none."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PILLOW], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Pillow" not in done.stderr
