"""Permit / filing certificate (易制毒化学品购买、运输许可或备案证明): an A4 PDF.

Layout: a double frame, the title, 编号, a bordered table of the parties, chemical,
quantity, vehicle, driver, route and validity, then a verification block (QR of the
signed token, 扫码核验, the verify URL, notes) and the issuing authority with the date.
Text is STSong-Light, so the text layer is searchable; output is byte-stable.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from xml.sax.saxutils import escape

from jobs.render import fmt_date_cn, local
from jobs.render.fonts import pdf_width, register_pdf_fonts, wrap
from jobs.render.qr import draw_qr

PermitKind = Literal["purchase", "transport"]
CATEGORY_CN = {1: "第一类", 2: "第二类", 3: "第三类"}
KIND_CN = {"purchase": "购买", "transport": "运输"}

MM = 72 / 25.4
PAGE_W, PAGE_H = 210 * MM, 297 * MM
MARGIN = 22 * MM
RED = (0.69, 0.11, 0.14)
INK = (0.13, 0.13, 0.13)
GREY = (0.4, 0.4, 0.4)

NOTES = (
    "本证明仅限载明的单位、品种、数量在有效期内使用，不得转让、涂改。",
    "核验时请扫描二维码或访问上方网址，证明信息以系统核验结果为准。",
)


@dataclass
class PermitCertData:
    token: str
    number: str
    title: str
    kind: PermitKind
    category: int
    applicant: str
    consignor: str | None
    consignee: str | None
    carrier: str | None
    chemical_name: str
    cas: str
    quantity: Decimal
    unit: str
    vehicle_plate: str | None
    driver_masked: str | None
    route: str | None
    valid_from: date
    valid_to: date
    issuing_authority: str
    verify_url: str
    issued_at: datetime

    def __post_init__(self) -> None:
        if self.kind not in KIND_CN:
            raise ValueError(f"unknown permit kind: {self.kind!r}")
        if self.category not in CATEGORY_CN:
            raise ValueError(f"unknown precursor category: {self.category!r}")
        local(self.issued_at)  # refuses a naive datetime


def format_quantity(quantity: Decimal, unit: str) -> str:
    """``Decimal("1500.000"), "千克"`` → ``1500 千克`` (no exponent, no trailing zeros)."""
    return f"{format(quantity.normalize(), 'f')} {unit}".strip()


def _rows(d: PermitCertData) -> list[tuple[str, str, str | None, str | None]]:
    """(label, value, label2, value2) rows; label2 None means the value spans the row."""
    dash = "—"
    applicant_label = "购买单位" if d.kind == "purchase" else "申请单位"
    rows: list[tuple[str, str, str | None, str | None]] = [
        (applicant_label, d.applicant, None, None),
    ]
    if d.kind == "transport":
        rows += [
            ("发货单位", d.consignor or dash, None, None),
            ("收货单位", d.consignee or dash, None, None),
            ("承运单位", d.carrier or dash, None, None),
        ]
    else:
        if d.consignor:
            rows.append(("销售单位", d.consignor, None, None))
        if d.consignee:
            rows.append(("收货单位", d.consignee, None, None))
    rows += [
        ("品　　名", d.chemical_name, "CAS 号", d.cas),
        (
            "品种类别",
            f"{CATEGORY_CN[d.category]}易制毒化学品",
            "数　　量",
            format_quantity(d.quantity, d.unit),
        ),
    ]
    if d.kind == "transport":
        rows += [
            ("运输车辆", d.vehicle_plate or dash, "驾驶人员", d.driver_masked or dash),
            ("运输路线", d.route or dash, None, None),
        ]
    rows.append(("有效期限", f"{fmt_date_cn(d.valid_from)} 至 {fmt_date_cn(d.valid_to)}", None, None))
    return rows


def _table(d: PermitCertData, font: str, width: float):
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, Table, TableStyle

    label_style = ParagraphStyle(
        "label",
        fontName=font,
        fontSize=12,
        leading=16,
        alignment=1,
        wordWrap="CJK",
        textColor=colors.Color(*INK),
    )
    value_style = ParagraphStyle(
        "value", fontName=font, fontSize=12, leading=16, wordWrap="CJK", textColor=colors.Color(*INK)
    )
    label_w = 26 * MM
    value_w = (width - 2 * label_w) / 2
    data, spans = [], []
    for i, (l1, v1, l2, v2) in enumerate(_rows(d)):
        cells = [Paragraph(escape(l1), label_style), Paragraph(escape(v1), value_style)]
        if l2 is None:
            cells += ["", ""]
            spans.append(("SPAN", (1, i), (3, i)))
        else:
            cells += [Paragraph(escape(l2), label_style), Paragraph(escape(v2 or ""), value_style)]
        data.append(cells)
    table = Table(data, colWidths=[label_w, value_w, label_w, value_w])
    style = [
        ("BOX", (0, 0), (-1, -1), 1.2, colors.Color(*INK)),
        ("INNERGRID", (0, 0), (-1, -1), 0.5, colors.Color(*INK)),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 8),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
        ("LEFTPADDING", (0, 0), (-1, -1), 6),
        ("RIGHTPADDING", (0, 0), (-1, -1), 6),
        ("BACKGROUND", (0, 0), (0, -1), colors.Color(0.96, 0.93, 0.93)),
    ]
    for i, row in enumerate(data):
        if row[2] != "":
            style.append(("BACKGROUND", (2, i), (2, i), colors.Color(0.96, 0.93, 0.93)))
    table.setStyle(TableStyle(style + spans))
    return table


def _text(
    c, font: str, size: float, x: float, y: float, s: str, color=INK, align: str = "left", bold: bool = False
) -> None:
    c.saveState()  # bold sets text render mode 2, which is graphics state
    c.setFont(font, size)
    c.setFillColorRGB(*color)
    if bold:  # STSong-Light has no bold face: fill + thin stroke
        c.setStrokeColorRGB(*color)
        c.setLineWidth(size * 0.035)
    t = c.beginText()
    t.setFont(font, size)
    t.setTextRenderMode(2 if bold else 0)
    w = pdf_width(font, size)(s)
    t.setTextOrigin({"left": x, "center": x - w / 2, "right": x - w}[align], y)
    t.textOut(s)
    c.drawText(t)
    c.restoreState()


def _frame(c) -> None:
    c.setStrokeColorRGB(*RED)
    c.setLineWidth(2.2)
    c.rect(12 * MM, 12 * MM, PAGE_W - 24 * MM, PAGE_H - 24 * MM, stroke=1, fill=0)
    c.setLineWidth(0.6)
    c.rect(14 * MM, 14 * MM, PAGE_W - 28 * MM, PAGE_H - 28 * MM, stroke=1, fill=0)


def _verify_block(c, d: PermitCertData, font: str, top: float) -> None:
    qr = 38 * MM
    x0 = MARGIN
    draw_qr(c, d.token, x0, top - qr, qr)
    tx = x0 + qr + 6 * MM
    width = PAGE_W - MARGIN - tx
    y = top - 6 * MM
    _text(c, font, 14, tx, y, "扫码核验", RED)
    y -= 7 * MM
    _text(c, font, 9.5, tx, y, "核验网址：", GREY)
    y -= 5 * MM
    url_lines = wrap(d.verify_url, pdf_width(font, 9.5), width)
    for line in url_lines:
        _text(c, font, 9.5, tx, y, line)
        y -= 4.6 * MM
    c.linkURL(d.verify_url, (tx, y + 3.5 * MM, tx + width, y + (4.6 * len(url_lines) + 3.5) * MM), relative=0)
    y -= 2 * MM
    for n, note in enumerate(NOTES, 1):
        for i, line in enumerate(wrap(note, pdf_width(font, 9), width - 5 * MM)):
            _text(c, font, 9, tx, y, f"{n}." if i == 0 else "", GREY)
            _text(c, font, 9, tx + 5 * MM, y, line, GREY)
            y -= 4.4 * MM


def render_permit_pdf(data: PermitCertData) -> bytes:
    """The certificate as a one-page A4 PDF; byte-identical for equal data."""
    from reportlab.pdfgen.canvas import Canvas

    font = register_pdf_fonts()
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(PAGE_W, PAGE_H), invariant=1, pageCompression=1)
    c.setTitle(f"{data.title} {data.number}")
    c.setAuthor(data.issuing_authority)
    c.setCreator("智治")
    c.setProducer("智治")
    _frame(c)

    content_w = PAGE_W - 2 * MARGIN
    y = PAGE_H - MARGIN - 14 * MM
    title_lines = wrap(data.title, pdf_width(font, 22), content_w)
    for line in title_lines:
        _text(c, font, 22, PAGE_W / 2, y, line, INK, "center", bold=True)
        y -= 10 * MM
    c.setStrokeColorRGB(*RED)
    c.setLineWidth(1.5)
    c.line(PAGE_W / 2 - 30 * MM, y + 6.5 * MM, PAGE_W / 2 + 30 * MM, y + 6.5 * MM)
    y -= 2 * MM
    _text(c, font, 11.5, PAGE_W - MARGIN, y, f"编号：{data.number}", INK, "right")
    y -= 5 * MM

    table = _table(data, font, content_w)
    _, th = table.wrapOn(c, content_w, y - MARGIN)
    table.drawOn(c, MARGIN, y - th)
    y -= th

    # Issuing authority and date under the table on the right, with room above
    # them for a seal on printed copies; the verification block sits at the foot.
    right = PAGE_W - MARGIN - 4 * MM
    y -= 30 * MM
    _text(c, font, 12.5, right, y, f"发证机关：{data.issuing_authority}", INK, "right")
    y -= 9 * MM
    _text(c, font, 12.5, right, y, f"发证日期：{fmt_date_cn(data.issued_at)}", INK, "right")

    qr_top = min(y - 14 * MM, MARGIN + 46 * MM)
    c.setStrokeColorRGB(*GREY)
    c.setLineWidth(0.4)
    c.setDash(2, 2)
    c.line(MARGIN, qr_top + 5 * MM, PAGE_W - MARGIN, qr_top + 5 * MM)
    c.setDash()
    _verify_block(c, data, font, qr_top)
    c.showPage()
    c.save()
    return buf.getvalue()
