"""QR codes for pass and permit tokens (segno; see bench/bench_qr.py for the choice).

Tokens are base45 text ("ZZ1:" + base45), which segno encodes in alphanumeric mode.
Error correction is fixed at M and never boosted, so the symbol for a given token is
always the same (deterministic output is what lets the file store dedup re-renders).
"""

from __future__ import annotations

import io
from functools import lru_cache

import segno
from PIL import Image
from reportlab.pdfgen.canvas import FILL_NON_ZERO

ERROR_LEVEL = "m"
QUIET_ZONE = 4  # modules; the QR spec minimum

Matrix = tuple[tuple[bool, ...], ...]


@lru_cache(maxsize=256)
def _make(text: str) -> segno.QRCode:
    # Cached because a pass is rendered as PDF and PNG right after each other and
    # an encode costs ~10 ms in pure Python.
    return segno.make_qr(text, error=ERROR_LEVEL, boost_error=False)


def qr_matrix(text: str) -> Matrix:
    """Dark (True) / light (False) modules of the QR for ``text``, without quiet zone."""
    return tuple(tuple(bool(v) for v in row) for row in _make(text).matrix)


def qr_png(text: str, scale: int = 6, border: int = QUIET_ZONE) -> bytes:
    """A black-on-white PNG of the QR, ``scale`` pixels per module, byte-stable."""
    buf = io.BytesIO()
    _make(text).save(buf, kind="png", scale=scale, border=border)
    return buf.getvalue()


def qr_image(text: str, scale: int, border: int = QUIET_ZONE) -> Image.Image:
    """The QR as a 1-bit Pillow image (white quiet zone included) for compositing."""
    matrix = qr_matrix(text)
    n = len(matrix)
    side = n + 2 * border
    small = Image.new("1", (side, side), 1)
    pixels = small.load()
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                pixels[x + border, y + border] = 0
    return small.resize((side * scale, side * scale), Image.Resampling.NEAREST)


def draw_qr(canvas, text: str, x: float, y: float, size: float, border: int = QUIET_ZONE) -> None:
    """Draw the QR as vector rectangles on a ReportLab canvas.

    ``(x, y)`` is the lower-left corner and ``size`` the side of the whole square,
    quiet zone included (painted white so the code scans on tinted backgrounds).
    Dark runs in a row become one rectangle; each is stretched a hair downwards so
    rasterisers that anti-alias each rectangle leave no seams between rows.
    """
    matrix = qr_matrix(text)
    n = len(matrix)
    module = size / (n + 2 * border)
    overlap = module * 0.05
    canvas.saveState()
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, y, size, size, stroke=0, fill=1)
    canvas.setFillColorRGB(0, 0, 0)
    path = canvas.beginPath()
    for r, row in enumerate(matrix):
        top = y + size - (border + r) * module
        c = 0
        while c < n:
            if not row[c]:
                c += 1
                continue
            start = c
            while c < n and row[c]:
                c += 1
            left = x + (border + start) * module
            path.rect(left, top - module - overlap, (c - start) * module, module + overlap)
    # Non-zero winding: the overlaps must add up, not cancel as under even-odd
    # (ReportLab's default fill mode).
    canvas.drawPath(path, stroke=0, fill=1, fillMode=FILL_NON_ZERO)
    canvas.restoreState()
