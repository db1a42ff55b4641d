"""Permit revocation by a regulator, and the public revocation list for offline verifiers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Actor
from core.db import utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from models.permits.applications import Permit, PermitStatus
from models.platform import AuditEntry
from services.permits.enterprises import get_enterprise, require_regulator


def revoke(
    session: Session, actor: Actor, permit_id: int, reason: str, now: datetime | None = None
) -> Permit:
    """Revoke a permit (regulator covering the holder); audited. Revoking twice is refused."""
    permit = session.get(Permit, permit_id, with_for_update=True)
    if permit is None:
        raise NotFound("许可/备案不存在", code="permit_not_found")
    require_regulator(session, actor, get_enterprise(session, permit.enterprise_id))
    if not reason.strip():
        raise ValidationFailed(code="reason_required", fields={"reason": "必须说明吊销原因"})
    if permit.status == PermitStatus.revoked:
        raise Conflict("该许可/备案已吊销", code="permit_already_revoked")
    permit.status, permit.revoked_at = PermitStatus.revoked, now or utcnow()
    session.add(
        AuditEntry(
            actor_id=actor.person_id,
            action="permit.revoked",
            object_type="permit",
            object_id=str(permit.id),
            data={"reason": reason},
        )
    )
    session.flush()
    return permit


def revocation_list(session: Session) -> dict:
    """Object ids and numbers of revoked permits (what an offline verifier checks, step 4)."""
    rows = session.execute(
        select(Permit.id, Permit.number, Permit.revoked_at)
        .where(Permit.status == PermitStatus.revoked)
        .order_by(Permit.id)
    )
    return {
        "revoked": [
            {"object_id": i, "number": n, "revoked_at": t.isoformat() if t else None} for i, n, t in rows
        ]
    }
