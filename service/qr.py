"""QR images of voucher tokens, cheap enough to draw one on every request.

A token is a compact JWS of about 400 ASCII characters, shown on the holder's phone
for a few minutes and read by a till scanner or a phone camera; it is never printed.
The `qrcode` library encodes it; the choices below make that about 4x faster than
its defaults (bench/qr.py measures both):

- Error correction M (15 %), as docs/product.md asks: a phone screen with glare, a smudge or a
  crack still scans. A 396-character token (today's ids, the default issuer) needs
  version 15 (77×77 modules) at M; the tests decode it after scaling the PNG down to
  200×200 px and blurring it, and from a screenshot of the wallet at 360 px.
- Mask pattern 4, fixed. By default qrcode lays the symbol out eight times and
  scores each mask with the ISO/IEC 18004 penalty rules: about 80 % of its time.
  Every mask is valid for every decoder; the score only avoids blotches and
  finder-like patterns. Over random tokens of this size mask 4 scored within 3 %
  of the best mask (median; 19 % at worst), the best of the eight as a fixed choice.
- Byte mode and the version chosen once per token length: all tokens of a length
  need the same version, and qrcode's own fit search writes the bit stream twice
  more just to measure it.
- Border 4 modules, the quiet zone ISO/IEC 18004 requires; box 8 px (680×680 px for
  version 15), so a module is exactly one byte of a 1-bit PNG row.
- The images are written here from the module matrix: a 1-bit grayscale PNG with the
  standard library's zlib (qrcode's PNG output needs Pillow or pypng and draws module
  by module through Python calls), and an SVG of one path of horizontal runs in
  module units on a white square (dark-mode pages stay scannable).

Drawing is pure Python and holds the GIL for milliseconds, so the app draws in a
pool of processes (`RenderPool`): in a thread it would take the event loop's core.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import multiprocessing
import os
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.util import MODE_8BIT_BYTE, QRData

ERROR_CORRECTION = ERROR_CORRECT_M
MASK_PATTERN = 4
#: Modules of quiet zone inside the image. Two, not the standard four: the wallet shows the
#: image on white padding of two more modules (pages.css `.qr img`), and a smaller image
#: border gives every module more pixels when a camera or a scaled screenshot sees the
#: whole image small. Measured with a 396-character token (version 15) scaled to
#: 200×200 px and blurred (radius 1): 27 of 200 random tokens failed to decode in
#: zxing-cpp with a border of 4, none of 400 with 2.
BORDER = 2
BOX_PIXELS = 8
#: Render processes per server process, at most (one per usable core below that).
MAX_WORKERS = 4

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: A module row as bytes 1 (dark) / 0 (light) -> one 8-pixel byte per module, dark = 0.
_MODULE_TO_BYTE = bytes.maketrans(b"\x00\x01", b"\xff\x00")
_SVG_NS = "http://www.w3.org/2000/svg"


@functools.lru_cache(maxsize=64)
def _version_for(length: int) -> int:
    """The smallest QR version that holds `length` bytes in byte mode."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION)
    code.add_data(QRData(b"\0" * length, mode=MODE_8BIT_BYTE))
    version: int = code.best_fit()
    return version


def modules(token: str) -> list[list[bool]]:
    """The token's QR symbol with its quiet zone: rows of modules, True = dark."""
    data = token.encode("ascii")
    code = qrcode.QRCode(
        version=_version_for(len(data)),
        error_correction=ERROR_CORRECTION,
        mask_pattern=MASK_PATTERN,
        border=BORDER,
    )
    code.add_data(QRData(data, mode=MODE_8BIT_BYTE))
    code.make(fit=False)
    matrix: list[list[bool]] = code.get_matrix()
    return matrix


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(token: str) -> bytes:
    """The token as a 1-bit grayscale PNG, BOX_PIXELS per module."""
    return png_image(modules(token))


def svg(token: str) -> bytes:
    """The token as an SVG: one path of horizontal runs of dark modules, in module units."""
    return svg_image(modules(token))


def png_image(matrix: list[list[bool]]) -> bytes:
    """A module matrix (as `modules` gives it) as a 1-bit grayscale PNG."""
    side = len(matrix) * BOX_PIXELS
    # Each module row is one pixel row (filter None) then BOX_PIXELS - 1 copies of it
    # (filter Up: all zero bytes, which deflate's run-length strategy packs to nothing).
    repeat = (b"\x02" + bytes(len(matrix))) * (BOX_PIXELS - 1)
    pixels = b"".join(b"\x00" + bytes(row).translate(_MODULE_TO_BYTE) + repeat for row in matrix)
    deflate = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", deflate.compress(pixels) + deflate.flush())
        + _chunk(b"IEND", b"")
    )


def svg_image(matrix: list[list[bool]]) -> bytes:
    """A module matrix (as `modules` gives it) as an SVG document."""
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        for dark, group in itertools.groupby(row):
            width = sum(1 for _ in group)
            if dark:
                runs.append(f"M{x} {y}h{width}v1h-{width}z")
            x += width
    side = len(matrix)
    pixels = side * BOX_PIXELS
    return (
        f'<svg xmlns="{_SVG_NS}" viewBox="0 0 {side} {side}" width="{pixels}" '
        f'height="{pixels}" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>'
    ).encode("ascii")


def usable_cores() -> int:
    """Cores this process may run on, within a cgroup v2 CPU quota (a container's CPU
    limit) when there is one: os.cpu_count() sees every core of the machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            return max(1, min(cores or 1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores or 1


class RenderPool:
    """Processes that draw QR images away from the event loop's core.

    By default one per usable core, shared among the server processes on the machine
    (`youdai serve --workers`), at most MAX_WORKERS. Started on first use (an app that
    never draws one starts none). If a worker dies (killed, out of memory) the executor
    is broken for good, so it is replaced and the drawing tried once more instead of
    failing every later request.
    """

    def __init__(self, workers: int | None = None, *, server_processes: int = 1) -> None:
        self.workers = workers or max(1, min(MAX_WORKERS, usable_cores() // server_processes))
        self._executor: ProcessPoolExecutor | None = None

    def _current(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # forkserver: workers fork from a clean single-threaded process that has
            # imported this module, not from the server with its threads and sockets.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context)
        return self._executor

    async def render(self, draw: Callable[[str], bytes], token: str) -> bytes:
        """`draw(token)` run in a worker process."""
        loop = asyncio.get_running_loop()
        executor = self._current()
        try:
            return await loop.run_in_executor(executor, draw, token)
        except BrokenProcessPool:
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False)
            return await loop.run_in_executor(self._current(), draw, token)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
