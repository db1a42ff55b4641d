"""Pass card (通行证): a 90 × 140 mm PDF for printing and a 720 px PNG for chat.

One layout, written once in millimetres from the top-left corner, drawn on two
surfaces: a ReportLab canvas (STSong-Light, vector QR) and a Pillow image at 8 px/mm
(Noto Sans SC, pixel-exact QR). Both are deterministic for the same data.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from PIL import Image, ImageDraw

from jobs.render import fmt_datetime, local
from jobs.render.fonts import ellipsize, pil_font, register_pdf_fonts, wrap
from jobs.render.qr import QUIET_ZONE, draw_qr, qr_image, qr_matrix

PassKind = Literal["visitor", "vehicle"]
KIND_LABELS = {"visitor": "人员", "vehicle": "车辆"}

CARD_W_MM = 90.0
CARD_H_MM = 140.0
PNG_PX_PER_MM = 8  # 720 × 1120 px
PT_PER_MM = 72 / 25.4

RGB = tuple[int, int, int]
RED: RGB = (176, 28, 36)
INK: RGB = (33, 33, 33)
GREY: RGB = (110, 110, 110)
PALE: RGB = (248, 238, 238)
WHITE: RGB = (255, 255, 255)


@dataclass
class PassCardData:
    token: str
    pass_no: str
    event_name: str
    ring_name: str
    kind: PassKind
    holder_masked: str
    plate_masked: str | None
    valid_from: datetime
    valid_to: datetime
    issued_at: datetime

    def __post_init__(self) -> None:
        if self.kind not in KIND_LABELS:
            raise ValueError(f"unknown pass kind: {self.kind!r}")
        for value in (self.valid_from, self.valid_to, self.issued_at):
            local(value)  # refuses naive datetimes before anything is drawn


class _Surface(Protocol):
    """Drawing primitives in mm from the top-left; font sizes in points."""

    def rect(self, x: float, y: float, w: float, h: float, fill: RGB) -> None: ...

    def text(
        self,
        x: float,
        baseline: float,
        s: str,
        size: float,
        color: RGB,
        align: str = "left",
        bold: bool = False,
    ) -> None: ...

    def width(self, s: str, size: float) -> float: ...

    def qr(self, token: str, x: float, y: float, size: float) -> float: ...


class _PdfSurface:
    def __init__(self, canvas) -> None:
        self.c = canvas
        self.font = register_pdf_fonts()

    def _y(self, y_mm: float) -> float:
        return (CARD_H_MM - y_mm) * PT_PER_MM

    def rect(self, x, y, w, h, fill):
        self.c.setFillColorRGB(*(v / 255 for v in fill))
        self.c.rect(x * PT_PER_MM, self._y(y + h), w * PT_PER_MM, h * PT_PER_MM, stroke=0, fill=1)

    def text(self, x, baseline, s, size, color, align="left", bold=False):
        rgb = [v / 255 for v in color]
        # STSong-Light has no bold face: bold is fill + thin stroke (render mode 2).
        # The mode is graphics state that outlives the text object (and ReportLab
        # does not re-emit mode 0), hence the save/restore around every string.
        self.c.saveState()
        t = self.c.beginText()
        t.setFont(self.font, size)
        t.setFillColorRGB(*rgb)
        if bold:
            self.c.setStrokeColorRGB(*rgb)
            self.c.setLineWidth(size * 0.04)
            t.setTextRenderMode(2)
        w = self.width(s, size)
        left = {"left": x, "center": x - w / 2, "right": x - w}[align]
        t.setTextOrigin(left * PT_PER_MM, self._y(baseline))
        t.textOut(s)
        self.c.drawText(t)
        self.c.restoreState()

    def width(self, s, size):
        from reportlab.pdfbase import pdfmetrics

        return pdfmetrics.stringWidth(s, self.font, size) / PT_PER_MM

    def qr(self, token, x, y, size):
        draw_qr(self.c, token, x * PT_PER_MM, self._y(y + size), size * PT_PER_MM)
        return size


class _PngSurface:
    def __init__(self, image: Image.Image) -> None:
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.k = PNG_PX_PER_MM

    def _font(self, size: float):
        return pil_font(round(size / PT_PER_MM * self.k))

    def rect(self, x, y, w, h, fill):
        k = self.k
        self.draw.rectangle(
            (round(x * k), round(y * k), round((x + w) * k) - 1, round((y + h) * k) - 1), fill=fill
        )

    def text(self, x, baseline, s, size, color, align="left", bold=False):
        anchor = {"left": "ls", "center": "ms", "right": "rs"}[align]
        self.draw.text(
            (round(x * self.k), round(baseline * self.k)),
            s,
            font=self._font(size),
            fill=color,
            anchor=anchor,
            stroke_width=1 if bold else 0,
            stroke_fill=color,
        )

    def width(self, s, size):
        return self._font(size).getlength(s) / self.k

    def qr(self, token, x, y, size):
        # Whole pixels per module keep every module edge sharp for scanners.
        side = len(qr_matrix(token)) + 2 * QUIET_ZONE
        scale = max(1, int(size * self.k) // side)
        img = qr_image(token, scale).convert("RGB")
        real = img.width / self.k
        self.image.paste(img, (round((x + (size - real) / 2) * self.k), round(y * self.k)))
        return real


def _layout(s: _Surface, d: PassCardData) -> None:
    w, mid, pad = CARD_W_MM, CARD_W_MM / 2, 7.0
    inner = w - 2 * pad
    s.rect(0, 0, w, CARD_H_MM, WHITE)

    # Header band: title and pass kind.
    s.rect(0, 0, w, 20, RED)
    s.text(mid, 13.5, "通行证", 22, WHITE, "center", bold=True)
    badge = KIND_LABELS[d.kind]
    bw = s.width(badge, 9) + 4
    s.rect(w - pad - bw, 6, bw, 6.5, WHITE)
    s.text(w - pad - bw / 2, 10.9, badge, 9, RED, "center", bold=True)

    # Event (up to two lines) and ring.
    y = 27.5
    lines = wrap(d.event_name, lambda t: s.width(t, 11), inner)
    if len(lines) > 2:
        lines = [lines[0], ellipsize("".join(lines[1:]), lambda t: s.width(t, 11), inner)]
    for line in lines:
        s.text(mid, y, line, 11, INK, "center", bold=True)
        y += 5.2
    ring = ellipsize(f"通行区域：{d.ring_name}", lambda t: s.width(t, 10), inner - 6)
    rw = s.width(ring, 10) + 6
    s.rect(mid - rw / 2, y - 2.6, rw, 6.6, PALE)
    s.text(mid, y + 2.1, ring, 10, RED, "center", bold=True)
    y += 6.0

    rows = [("持证人", d.holder_masked)]
    if d.plate_masked:
        rows.append(("车牌号", d.plate_masked))
    rows += [
        ("有效期", f"{fmt_datetime(d.valid_from)} 起"),
        ("", f"{fmt_datetime(d.valid_to)} 止"),
        ("签发时间", fmt_datetime(d.issued_at)),
    ]
    row_h, footer_top = 4.8, CARD_H_MM - 11

    # QR as large as the card allows once the rows below it are accounted for.
    below_qr = 3.0 + 9.5 + (len(rows) - 1) * row_h + 3.0
    qr_size = min(56.0, footer_top - y - below_qr)
    y += s.qr(d.token, mid - qr_size / 2, y, qr_size) + 3.0

    s.text(mid, y, d.pass_no, 10, INK, "center")
    s.text(mid, y + 4.0, "通行证号", 6.5, GREY, "center")
    y += 9.5

    # The label/value block is centred as a whole, like everything above it.
    label_w = 15.0
    values = [ellipsize(v, lambda t: s.width(t, 9), inner - label_w) for _, v in rows]
    left = mid - (label_w + max(s.width(v, 9) for v in values)) / 2
    for (label, _), value in zip(rows, values, strict=True):
        if label:
            s.text(left, y, label, 8.5, GREY)
        s.text(left + label_w, y, value, 9, INK)
        y += row_h

    # Footer band.
    s.rect(0, footer_top, w, CARD_H_MM - footer_top, RED)
    s.text(mid, CARD_H_MM - 4.3, "请在闸机处出示二维码", 11, WHITE, "center", bold=True)


def render_pass_card_pdf(data: PassCardData) -> bytes:
    """The pass card as a one-page 90 × 140 mm PDF; byte-identical for equal data."""
    from reportlab.pdfgen.canvas import Canvas

    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(CARD_W_MM * PT_PER_MM, CARD_H_MM * PT_PER_MM), invariant=1, pageCompression=1)
    c.setTitle(f"通行证 {data.pass_no}")
    c.setAuthor("智治")
    c.setCreator("智治")
    c.setProducer("智治")
    _layout(_PdfSurface(c), data)
    c.showPage()
    c.save()
    return buf.getvalue()


def render_pass_card_png(data: PassCardData) -> bytes:
    """The pass card as a 720 × 1120 px PNG for phones; byte-identical for equal data."""
    k = PNG_PX_PER_MM
    image = Image.new("RGB", (int(CARD_W_MM * k), int(CARD_H_MM * k)), WHITE)
    _layout(_PngSurface(image), data)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
