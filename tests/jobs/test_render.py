import io
import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pypdf
import pypdfium2
import pytest
import zxingcpp
from PIL import Image

from core.files import LocalFileStore
from jobs.render import fmt_datetime
from jobs.render.fonts import pdf_width, register_pdf_fonts, wrap
from jobs.render.pass_card import PassCardData, render_pass_card_pdf, render_pass_card_png
from jobs.render.permit_cert import PermitCertData, format_quantity, render_permit_pdf
from jobs.render.qr import qr_matrix, qr_png

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def make_token(seed: int) -> str:
    return "ZZ1:" + "".join(random.Random(seed).choices(BASE45, k=150))


def decode_all(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image) if r.valid]


def pdf_page_image(pdf: bytes, dpi: int = 200) -> Image.Image:
    doc = pypdfium2.PdfDocument(pdf)
    try:
        return doc[0].render(scale=dpi / 72).to_pil()
    finally:
        doc.close()


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return "".join(reader.pages[0].extract_text().split())


def pass_data(**overrides) -> PassCardData:
    fields = dict(
        token=make_token(1),
        pass_no="TX-2025-000123",
        event_name="2025年中国—东盟博览会开幕式",
        ring_name="核心区（一环）",
        kind="vehicle",
        holder_masked="张*明",
        plate_masked="桂A·1**23",
        valid_from=datetime(2025, 9, 1, 0, 0, tzinfo=UTC),
        valid_to=datetime(2025, 9, 3, 10, 0, tzinfo=UTC),
        issued_at=datetime(2025, 8, 30, 2, 15, tzinfo=UTC),
    )
    fields.update(overrides)
    return PassCardData(**fields)


def permit_data(**overrides) -> PermitCertData:
    fields = dict(
        token=make_token(2),
        number="YZD-YS-450100-2025-000123",
        title="第三类易制毒化学品运输备案证明",
        kind="transport",
        category=3,
        applicant="南宁市某某化工有限公司",
        consignor="南宁市某某化工有限公司",
        consignee="柳州市某某制药有限公司",
        carrier="广西某某危险货物运输有限公司",
        chemical_name="硫酸",
        cas="7664-93-9",
        quantity=Decimal("12500.000"),
        unit="千克",
        vehicle_plate="桂A·1**23",
        driver_masked="李*强",
        route="南宁市西乡塘区—G72泉南高速—柳州市柳南区",
        valid_from=date(2025, 9, 1),
        valid_to=date(2025, 11, 30),
        issuing_authority="南宁市公安局禁毒支队",
        verify_url="https://zz.example.gov.cn/verify/YZD-YS-450100-2025-000123",
        issued_at=datetime(2025, 8, 30, 2, 15, tzinfo=UTC),
    )
    fields.update(overrides)
    return PermitCertData(**fields)


# --- QR ---------------------------------------------------------------------------


def test_token_is_encoded_as_version_6_alphanumeric_level_m():
    matrix = qr_matrix(make_token(3))
    assert len(matrix) == 41 and all(len(row) == 41 for row in matrix)


def test_qr_png_decodes_to_the_token_and_is_byte_stable():
    token = make_token(4)
    png = qr_png(token)
    assert decode_all(Image.open(io.BytesIO(png))) == [token]
    assert qr_png(token) == png


# --- pass card --------------------------------------------------------------------


@pytest.mark.parametrize("kind,plate", [("vehicle", "桂A·1**23"), ("visitor", None)])
def test_pass_card_png_qr_decodes_to_the_token(kind, plate):
    data = pass_data(kind=kind, plate_masked=plate, token=make_token(10))
    image = Image.open(io.BytesIO(render_pass_card_png(data)))
    assert image.format == "PNG" and image.size == (720, 1120)
    assert decode_all(image) == [data.token]


def test_pass_card_pdf_qr_decodes_at_200_dpi():
    data = pass_data(token=make_token(11))
    assert decode_all(pdf_page_image(render_pass_card_pdf(data))) == [data.token]


def test_pass_card_pdf_is_card_sized_with_chinese_text_layer():
    data = pass_data()
    pdf = render_pass_card_pdf(data)
    box = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (90, 140)
    text = pdf_text(pdf)
    for expected in (
        "通行证",
        data.event_name,
        data.ring_name,
        data.pass_no,
        data.holder_masked,
        data.plate_masked,
        "请在闸机处出示二维码",
        "车辆",
    ):
        assert expected in text, expected


def test_pass_card_prints_validity_in_shanghai_time():
    text = pdf_text(render_pass_card_pdf(pass_data()))
    # 00:00 UTC is 08:00 in Asia/Shanghai.
    assert "2025-09-0108:00起" in text and "2025-09-0318:00止" in text


def test_pass_card_renders_identical_bytes_twice():
    assert render_pass_card_pdf(pass_data()) == render_pass_card_pdf(pass_data())
    assert render_pass_card_png(pass_data()) == render_pass_card_png(pass_data())


def test_pass_card_change_changes_bytes():
    assert render_pass_card_pdf(pass_data()) != render_pass_card_pdf(pass_data(pass_no="X-2"))


def test_long_event_name_still_renders_a_scannable_card():
    data = pass_data(event_name="第十届中国—东盟博览会暨中国—东盟商务与投资峰会开幕式及系列配套活动安保")
    assert decode_all(Image.open(io.BytesIO(render_pass_card_png(data)))) == [data.token]
    assert decode_all(pdf_page_image(render_pass_card_pdf(data))) == [data.token]


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        pass_data(valid_from=datetime(2025, 9, 1, 8, 0))


def test_unknown_pass_kind_is_refused():
    with pytest.raises(ValueError):
        pass_data(kind="drone")


# --- permit certificate -----------------------------------------------------------


def test_permit_pdf_qr_decodes_at_200_dpi():
    data = permit_data(token=make_token(20))
    assert decode_all(pdf_page_image(render_permit_pdf(data))) == [data.token]


def test_permit_pdf_is_a4_with_the_fields_in_its_text_layer():
    data = permit_data()
    pdf = render_permit_pdf(data)
    box = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    text = pdf_text(pdf)
    for expected in (
        data.title,
        "编号",
        data.number,
        data.chemical_name,
        data.cas,
        data.applicant,
        data.consignee,
        data.carrier,
        data.vehicle_plate,
        data.driver_masked,
        "12500千克",
        "2025年9月1日至2025年11月30日",
        "发证机关",
        data.issuing_authority,
        "发证日期：2025年8月30日",
        "扫码核验",
        data.verify_url,
    ):
        assert expected in text, expected


def test_purchase_filing_without_transport_fields_renders():
    data = permit_data(
        kind="purchase",
        category=2,
        title="第二类易制毒化学品购买备案证明",
        consignor="广西某某化学试剂有限公司",
        consignee=None,
        carrier=None,
        vehicle_plate=None,
        driver_masked=None,
        route=None,
        chemical_name="苯乙酸",
        cas="103-82-2",
        quantity=Decimal("50.50"),
    )
    pdf = render_permit_pdf(data)
    text = pdf_text(pdf)
    assert "购买单位" in text and "销售单位" in text and "50.5千克" in text
    assert "运输车辆" not in text
    assert decode_all(pdf_page_image(pdf)) == [data.token]


def test_markup_characters_in_fields_are_printed_literally():
    data = permit_data(applicant="A&B<化工>有限公司")
    assert "A&B<化工>有限公司" in pdf_text(render_permit_pdf(data))


def test_permit_renders_identical_bytes_twice():
    assert render_permit_pdf(permit_data()) == render_permit_pdf(permit_data())


def test_format_quantity_drops_exponent_and_trailing_zeros():
    assert format_quantity(Decimal("1.5E+3"), "千克") == "1500 千克"
    assert format_quantity(Decimal("0.250"), "升") == "0.25 升"


# --- both documents in the file store --------------------------------------------


def test_rendered_documents_are_stored_once_however_often_they_are_rendered(tmp_path):
    store = LocalFileStore(tmp_path)
    docs = [
        (lambda: render_pass_card_pdf(pass_data()), "application/pdf", "pdf"),
        (lambda: render_pass_card_png(pass_data()), "image/png", "png"),
        (lambda: render_permit_pdf(permit_data()), "application/pdf", "pdf"),
    ]
    for render, content_type, ext in docs:
        first = store.put(render(), content_type, ext)
        second = store.put(render(), content_type, ext)
        assert second == first
        assert store.open(first.key)[:4] in (b"%PDF", b"\x89PNG")
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 3


# --- helpers ----------------------------------------------------------------------


def test_wrap_fits_width_and_keeps_closing_punctuation_off_line_starts():
    font = register_pdf_fonts()
    width_of = pdf_width(font, 10)
    text = "本证明仅限载明的单位、品种、数量在有效期内使用，不得转让、涂改。ABC123456789"
    lines = wrap(text, width_of, 60)
    assert "".join(lines) == text
    assert all(width_of(line) <= 60 for line in lines)
    assert not any(line[0] in "，。、" for line in lines)


def test_fmt_datetime_converts_to_shanghai():
    assert fmt_datetime(datetime(2025, 1, 1, 16, 30, tzinfo=UTC)) == "2025-01-02 00:30"
    assert fmt_datetime(datetime(2025, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=9)))) == "2025-01-01 08:00"
