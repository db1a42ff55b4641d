"""A certificate job as a domain would write one (passes/permits plug in the same way).

Registered on import; RQ workers in tests load it with JOB_MODULES=tests.jobs.certificates.
Payload ids only: the job re-reads what it needs and is idempotent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from flask import current_app

from core import signing
from jobs.documents import PDF, PNG, DocumentSpec, file_store, render_and_store
from jobs.queues import CERTIFICATES
from jobs.registry import PermanentError, job, warmup
from models.identity import Person
from services import keys

SCOPE = "test-certs"
CARD_PNG = DocumentSpec("card_png", PNG, "png")
CARD_PDF = DocumentSpec("card_pdf", PDF, "pdf")
PERMIT_PDF = DocumentSpec("certificate_pdf", PDF, "pdf")
VALID_FROM = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
VALID_TO = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)


def token_for(session, subject_id: int) -> str:
    ring = keys.signing_ring(session, SCOPE, current_app.extensions["zhizhi"].settings.signing_kek)
    return signing.encode_token(
        kind=1,
        object_id=subject_id,
        scope_id=7,
        zone=1,
        not_before=int(VALID_FROM.timestamp()),
        not_after=int(VALID_TO.timestamp()),
        ring=ring,
    )


def pass_card(token: str, subject_id: int):
    from jobs.render.pass_card import PassCardData

    return PassCardData(
        token=token,
        pass_no=f"TX2026-{subject_id:06d}",
        event_name="乌镇世界互联网大会",
        ring_name="核心区",
        kind="visitor",
        holder_masked="张*",
        plate_masked=None,
        valid_from=VALID_FROM,
        valid_to=VALID_TO,
        issued_at=VALID_FROM,
    )


def permit(token: str, subject_id: int):
    from jobs.render.permit_cert import PermitCertData

    return PermitCertData(
        token=token,
        number=f"浙易运备〔2026〕{subject_id:05d}号",
        title="第三类易制毒化学品运输备案证明",
        kind="transport",
        category=3,
        applicant="桐乡市化工贸易有限公司",
        consignor="桐乡市化工贸易有限公司",
        consignee="嘉兴市南湖精细化工厂",
        carrier="桐乡市危险货物运输公司",
        chemical_name="硫酸",
        cas="7664-93-9",
        quantity=Decimal("12.5"),
        unit="吨",
        vehicle_plate="浙F12345",
        driver_masked="李**",
        route="桐乡市—嘉兴市南湖区",
        valid_from=VALID_FROM.date(),
        valid_to=VALID_TO.date(),
        issuing_authority="桐乡市公安局",
        verify_url="https://zhizhi.example/v",
        issued_at=VALID_FROM,
    )


@job("test.certificate", queue=CERTIFICATES)
def render_certificate(session, item) -> dict:
    """Renders the pass card (PNG + PDF) or the permit PDF of subject ``subject_id``."""
    subject_id, owner = item.payload["subject_id"], item.payload.get("owner")
    if owner is not None and session.get(Person, owner) is None:
        raise PermanentError("证件持有人不存在（可能已被删除），未生成")
    store = file_store()
    token = token_for(session, subject_id)
    common = {"subject_type": "test", "subject_id": subject_id, "owner_person_id": owner}
    if item.payload.get("doc") == "permit":
        docs = [
            render_and_store(
                session,
                store,
                spec=PERMIT_PDF,
                filename=f"permit-{subject_id}.pdf",
                render=lambda: _permit_pdf(token, subject_id),
                **common,
            )
        ]
    else:
        docs = [
            render_and_store(
                session,
                store,
                spec=CARD_PNG,
                filename=f"pass-{subject_id}.png",
                render=lambda: _card_png(token, subject_id),
                **common,
            ),
            render_and_store(
                session,
                store,
                spec=CARD_PDF,
                filename=f"pass-{subject_id}.pdf",
                render=lambda: _card_pdf(token, subject_id),
                **common,
            ),
        ]
    return {"files": [d.file_key for d in docs]}


def _card_png(token: str, subject_id: int) -> bytes:
    from jobs.render.pass_card import render_pass_card_png

    return render_pass_card_png(pass_card(token, subject_id))


def _card_pdf(token: str, subject_id: int) -> bytes:
    from jobs.render.pass_card import render_pass_card_pdf

    return render_pass_card_pdf(pass_card(token, subject_id))


def _permit_pdf(token: str, subject_id: int) -> bytes:
    from jobs.render.permit_cert import render_permit_pdf

    return render_permit_pdf(permit(token, subject_id))


@warmup
def _warm_renderers() -> None:
    """Fonts, QR encoder and ReportLab loaded once in the worker parent."""
    token = "ZZ1:" + "0" * 100
    _card_png(token, 0)
    _card_pdf(token, 0)
    _permit_pdf(token, 0)
