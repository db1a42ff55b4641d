"""Render-and-store for certificates: domains hand in bytes-producing renderers.

A render job (registered by the domain, e.g. ``passes.render``) calls
``render_and_store`` once per document. The bytes go to the content-addressed file
store (``core.files``) and one ``stored_documents`` row per (subject, doc kind) records
key + sha256. Re-running the job finds the row and its file and renders nothing; if
the bytes are rendered again they hash to the same key, so there is never a second file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import Forbidden, NotFound
from models.jobs import StoredDocument


@dataclass(frozen=True)
class DocumentSpec:
    doc_kind: str  # "card_png", "card_pdf", "certificate_pdf"
    content_type: str
    ext: str


PNG = "image/png"
PDF = "application/pdf"


def file_store(app: Any = None) -> Any:
    """The app's file store (``FILE_STORE_DIR``, default ``instance/files``)."""
    from flask import current_app

    from core.files import LocalFileStore

    app = app or current_app
    return LocalFileStore(app.extensions["zhizhi"].settings.file_store_dir)


def render_and_store(
    session: Session,
    store: Any,
    *,
    subject_type: str,
    subject_id: int,
    spec: DocumentSpec,
    render: Callable[[], bytes],
    filename: str,
    owner_person_id: int | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> StoredDocument:
    """Render (unless already stored) and record one document; flushes, never commits.

    Idempotent: an existing row whose file is present is returned as is (``force``
    re-renders, e.g. after the subject changed; equal bytes keep the same key).
    """
    now = now or utcnow()
    row = _row(session, subject_type, subject_id, spec.doc_kind)
    if row is not None and not force and store.exists(row.file_key):
        return row
    stored = store.put(render(), spec.content_type, spec.ext)
    if row is None:
        row = StoredDocument(
            subject_type=subject_type, subject_id=subject_id, doc_kind=spec.doc_kind, created_at=now
        )
        try:
            with session.begin_nested():
                _fill(row, stored, filename, owner_person_id, now)
                session.add(row)
            return row
        except IntegrityError:  # a concurrent run recorded it first (same bytes, same key)
            row = _row(session, subject_type, subject_id, spec.doc_kind)
            assert row is not None
    if row.sha256 != stored.sha256:
        _fill(row, stored, filename, owner_person_id, now)
    return row


def _fill(row: StoredDocument, stored: Any, filename: str, owner: int | None, now: datetime) -> None:
    row.file_key, row.sha256, row.size = stored.key, stored.sha256, stored.size
    row.content_type, row.filename, row.owner_person_id, row.updated_at = (
        stored.content_type,
        filename,
        owner,
        now,
    )


def _row(session: Session, subject_type: str, subject_id: int, doc_kind: str) -> StoredDocument | None:
    return session.scalar(
        select(StoredDocument).where(
            StoredDocument.subject_type == subject_type,
            StoredDocument.subject_id == subject_id,
            StoredDocument.doc_kind == doc_kind,
        )
    )


def documents_of(session: Session, subject_type: str, subject_id: int) -> list[StoredDocument]:
    return list(
        session.scalars(
            select(StoredDocument)
            .where(StoredDocument.subject_type == subject_type, StoredDocument.subject_id == subject_id)
            .order_by(StoredDocument.doc_kind)
        )
    )


def readable_document(session: Session, actor: Any, doc_id: int) -> StoredDocument:
    """The document if ``actor`` owns it (or is an admin); NotFound / Forbidden otherwise.

    Domains with wider rules (an officer of the jurisdiction) check before serving."""
    row = session.get(StoredDocument, doc_id)
    if row is None:
        raise NotFound("文件不存在", code="file_not_found")
    if row.owner_person_id != actor.person_id and not actor.has_role("admin"):
        raise Forbidden("只能下载本人的文件", code="file_forbidden")
    return row
