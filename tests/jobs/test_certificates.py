"""Certificate plumbing: render → content-addressed store → one row per document; served
to their owner; through a real RQ worker the QR decodes to a token that verifies."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

pytest.importorskip("core.files")
pytest.importorskip("jobs.render.pass_card")

from core import outbox, signing
from jobs.documents import file_store, render_and_store
from jobs.runner import run_item
from models.jobs import StoredDocument
from models.platform import OutboxItem, OutboxStatus
from services import keys
from tests.helpers import Api, make_person, token_for
from tests.jobs import certificates


def _files(store_root) -> list[str]:
    return sorted(str(p.relative_to(store_root)) for p in store_root.rglob("*") if p.is_file())


def test_rerunning_a_render_creates_no_second_file_or_row(app, db) -> None:
    with app.app_context():
        store = file_store(app)
        before = set(_files(store.root))
        renders = []

        def render() -> bytes:
            renders.append(1)
            return certificates._card_pdf(certificates.token_for(db, 901), 901)

        kw = {"subject_type": "test", "subject_id": 901, "spec": certificates.CARD_PDF, "filename": "a.pdf"}
        first = render_and_store(db, store, render=render, **kw)
        again = render_and_store(db, store, render=render, **kw)  # stored: not rendered again
        forced = render_and_store(db, store, render=render, force=True, **kw)  # same bytes, same key
    assert first.id == again.id == forced.id and len(renders) == 2
    assert set(_files(store.root)) - before == {first.file_key}
    rows = db.scalars(select(StoredDocument).where(StoredDocument.subject_id == 901)).all()
    assert len(rows) == 1 and rows[0].sha256 in rows[0].file_key


def test_job_for_a_deleted_owner_fails_once_with_the_reason(app, db) -> None:
    item = outbox.add(db, "test.certificate", {"subject_id": 902, "owner": 987654})
    db.commit()
    assert run_item(app, item) == "failed"
    assert run_item(app, item) == "already_failed"
    row = db.get(OutboxItem, item)
    db.refresh(row)
    assert row.attempts == 1 and "不存在" in row.last_error


def test_cross_tenant_files_are_served_to_their_owner_only(app, db, client, run_jobs) -> None:
    owner, other = make_person(db, "citizen"), make_person(db, "citizen")
    outbox.add(db, "test.certificate", {"subject_id": 903, "owner": owner.id})
    db.commit()
    run_jobs()
    png = db.scalars(select(StoredDocument).where(StoredDocument.doc_kind == "card_png")).one()
    resp = Api(client, token_for(db, owner)).get(f"/files/{png.id}")
    assert resp.status_code == 200 and resp.mimetype == "image/png" and resp.data[:4] == b"\x89PNG"
    resp = Api(client, token_for(db, other)).get(f"/files/{png.id}")
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "file_forbidden"
    assert Api(client, token_for(db, other)).get("/files/999999").status_code == 404


def decode_qr(image) -> str:
    import zxingcpp

    found = zxingcpp.read_barcodes(image)
    assert found, "no QR code found"
    return found[0].text


def pdf_qr_and_text(data: bytes) -> tuple[str, str]:
    import pypdfium2
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    page = pypdfium2.PdfDocument(data)[0]
    image = page.render(scale=4).to_pil()
    return decode_qr(image), text


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a real Redis for rq worker")
def test_certificate_job_through_a_real_rq_worker(app, committed_db, test_env) -> None:
    from PIL import Image

    ext = app.extensions["zhizhi"]
    owner = make_person(committed_db, "citizen")
    with app.app_context():
        keys.signing_ring(committed_db, certificates.SCOPE, ext.settings.signing_kek)
    ids = [
        outbox.add(committed_db, "test.certificate", {"subject_id": 11, "owner": owner.id}),
        outbox.add(committed_db, "test.certificate", {"subject_id": 12, "owner": owner.id, "doc": "permit"}),
    ]
    ext.commit(committed_db)
    env = {**os.environ, **test_env, "JOB_MODULES": "tests.jobs.certificates"}
    queue = f"{test_env['QUEUE_PREFIX']}certificates"
    subprocess.run(
        [sys.executable, "-m", "jobs.worker", "--burst", "--queues", queue], env=env, check=True, timeout=180
    )
    committed_db.expire_all()
    assert {committed_db.get(OutboxItem, i).status for i in ids} == {OutboxStatus.done}
    docs = {d.doc_kind: d for d in committed_db.scalars(select(StoredDocument))}
    store = file_store(app)
    ring = keys.verify_ring(committed_db, certificates.SCOPE)

    png_token = decode_qr(Image.open(io.BytesIO(store.open(docs["card_png"].file_key))))
    assert signing.verify_token(png_token, ring.verifier).object_id == 11
    pdf_token, text = pdf_qr_and_text(store.open(docs["card_pdf"].file_key))
    assert pdf_token == png_token
    assert "乌镇世界互联网大会" in text and "核心区" in text and "TX2026-000011" in text
    permit_token, text = pdf_qr_and_text(store.open(docs["certificate_pdf"].file_key))
    assert signing.verify_token(permit_token, ring.verifier).object_id == 12
    for field in ("易制毒化学品运输备案证明", "硫酸", "桐乡市公安局", "嘉兴市南湖精细化工厂", "浙F12345"):
        assert field in text, field
