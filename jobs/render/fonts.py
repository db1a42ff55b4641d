"""Fonts for rendered documents and helpers to fit Chinese text into a width.

PDF: ReportLab's built-in CID font ``STSong-Light`` (Adobe-GB1). It needs no font
file, and the text layer extracts as Unicode, so the PDF stays searchable. Readers
substitute a local Song/Ming face for it.

PNG: Pillow needs real glyph outlines. They come from Noto Sans SC / Noto Serif SC
(SIL OFL 1.1) shipped in the data-only PyPI package ``pylopdf-fonts-zh-cn``; no system
font or apt package is involved, so the output is the same on every machine with the
same wheel versions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

PDF_FONT = "STSong-Light"

# Characters that must not start a line (Chinese line-breaking rule, 避头点).
_NO_LINE_START = set("，。、；：？！）》」』】〕…·,.;:?!)]}%")


def register_pdf_fonts() -> str:
    """Register ``STSong-Light`` with ReportLab once; return its name. Idempotent."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if PDF_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))
    return PDF_FONT


def cjk_font_path(serif: bool = False) -> Path:
    """Path of the OpenType CJK face used for PNG output."""
    try:
        import pylopdf_fonts_zh_cn as noto
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("PNG rendering needs the font package pylopdf-fonts-zh-cn (Noto Sans SC)") from exc
    return noto.serif_path() if serif else noto.sans_path()


@lru_cache(maxsize=32)
def pil_font(size: int, serif: bool = False) -> ImageFont.FreeTypeFont:
    """A Pillow font of ``size`` pixels; cached (loading the 8 MB face takes a while)."""
    return ImageFont.truetype(str(cjk_font_path(serif)), size)


def pdf_width(font: str, size: float) -> Callable[[str], float]:
    """A width function for ReportLab text set in ``font`` at ``size`` points."""
    from reportlab.pdfbase import pdfmetrics

    return lambda s: pdfmetrics.stringWidth(s, font, size)


def pil_width(font: ImageFont.FreeTypeFont) -> Callable[[str], float]:
    """A width function for Pillow text set in ``font``."""
    return font.getlength


def wrap(text: str, width_of: Callable[[str], float], max_width: float) -> list[str]:
    """Break ``text`` into lines no wider than ``max_width``.

    Chinese breaks between any two characters; runs of Latin letters/digits (plates,
    numbers, URLs are broken only when a run alone is too wide) stay together, and
    closing punctuation never starts a line.
    """
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for token in _tokens(paragraph):
            candidate = line + token
            if not line or width_of(candidate) <= max_width:
                line = candidate
            elif token[0] in _NO_LINE_START:
                line, moved = _pull_last(line)
                lines.append(line)
                line = moved + token
            else:
                lines.append(line.rstrip())
                line = token.lstrip()
            while width_of(line) > max_width and len(line) > 1:
                cut = _fit(line, width_of, max_width)
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def ellipsize(text: str, width_of: Callable[[str], float], max_width: float) -> str:
    """Cut ``text`` to ``max_width`` with a trailing ellipsis if it does not fit."""
    if width_of(text) <= max_width:
        return text
    while text and width_of(text + "…") > max_width:
        text = text[:-1]
    return text + "…"


def _tokens(paragraph: str) -> list[str]:
    tokens: list[str] = []
    for ch in paragraph:
        if (
            tokens
            and ch.isascii()
            and ch.isalnum()
            and tokens[-1][-1:].isascii()
            and tokens[-1][-1:].isalnum()
        ):
            tokens[-1] += ch
        else:
            tokens.append(ch)
    return tokens


def _pull_last(line: str) -> tuple[str, str]:
    # Move the last character down with the punctuation, unless that empties the line.
    if len(line) > 1:
        return line[:-1], line[-1]
    return line, ""


def _fit(line: str, width_of: Callable[[str], float], max_width: float) -> int:
    cut = len(line) - 1
    while cut > 1 and width_of(line[:cut]) > max_width:
        cut -= 1
    return cut
