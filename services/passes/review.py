"""Officer review queue: applications in manual review, decided with a note (audited)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Actor, require_role
from core.db import utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from models.passes import Application, ApplicationStatus
from models.platform import AuditEntry
from services.passes import issuance, scope


def queue(
    session: Session, actor: Actor, event_id: int, *, after_id: int | None, limit: int
) -> list[Application]:
    """Oldest first: officers work the queue in arrival order (an event of their
    jurisdiction, ``scope.officer_event``)."""
    scope.officer_event(session, actor, event_id)
    stmt = select(Application).where(
        Application.event_id == event_id, Application.status == ApplicationStatus.manual_review
    )
    if after_id is not None:
        stmt = stmt.where(Application.id > after_id)
    return list(session.scalars(stmt.order_by(Application.id).limit(limit)))


def decide(
    session: Session,
    actor: Actor,
    application_id: int,
    *,
    approve: bool,
    note: str,
    kek: bytes,
    now: datetime | None = None,
) -> Application:
    """Approve (a pass is issued) or reject a manual-review application. Overriding an
    automatic outcome is allowed only from manual_review; every decision is audited."""
    require_role(actor, "officer")
    now = now or utcnow()
    app = session.get(Application, application_id, with_for_update=True)
    if app is None:
        raise NotFound("申请不存在", code="application_not_found")
    scope.officer_event(session, actor, app.event_id)
    if app.status != ApplicationStatus.manual_review:
        raise Conflict("该申请不在人工审核状态", code="not_in_review", details={"status": app.status.value})
    if not note.strip():
        raise ValidationFailed(fields={"note": "请填写审核意见"})
    app.status = ApplicationStatus.approved if approve else ApplicationStatus.rejected
    app.decided_by_id, app.decided_at, app.decision_note = actor.person_id, now, note
    session.add(
        AuditEntry(
            actor_id=actor.person_id,
            action="passes.review." + ("approve" if approve else "reject"),
            object_type="pass_application",
            object_id=str(app.id),
            data={"note": note, "rules": [f"{r.rule}:{r.reason_code}" for r in app.rule_results]},
            created_at=now,
        )
    )
    if approve:
        issuance.issue(session, app, kek=kek, now=now)
    session.flush()
    return app
