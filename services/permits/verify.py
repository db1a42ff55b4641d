"""Public verification of a permit by number or QR token: only non-personal fields."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import signing
from core.db import utcnow
from core.errors import NotFound, ValidationFailed
from models.permits.applications import Permit, PermitStatus
from models.permits.catalogue import Chemical
from services.keys import verify_ring
from services.permits.issuing import SIGNING_SCOPE, local_date


def _status(permit: Permit, now: datetime) -> str:
    if permit.status == PermitStatus.revoked:
        return "revoked"
    if permit.status == PermitStatus.used or local_date(now) > permit.valid_until:
        return "expired"
    return "valid"


def public_view(session: Session, permit: Permit, now: datetime) -> dict:
    chem = session.get(Chemical, permit.chemical_id)
    return {
        "status": _status(permit, now),
        "flagged": permit.status == PermitStatus.flagged,
        "number": permit.number,
        "purpose": permit.purpose.value,
        "form": permit.form.value,
        "chemical": chem.name_zh,
        "category": chem.category,
        "quantity": str(permit.quantity),
        "unit": permit.unit,
        "valid_from": permit.valid_from.isoformat(),
        "valid_until": permit.valid_until.isoformat(),
        "issuing_authority": permit.issuing_authority,
    }


def by_number(session: Session, number: str, now: datetime | None = None) -> dict:
    permit = session.scalar(select(Permit).where(Permit.number == number.strip().upper()))
    if permit is None:
        raise NotFound("未查到该证明编号", code="permit_not_found")
    return public_view(session, permit, now or utcnow())


def by_token(session: Session, token: str, now: datetime | None = None) -> dict:
    """Check the signature with the published keys, then revocation and validity."""
    ring = verify_ring(session, SIGNING_SCOPE)
    try:
        claims = signing.verify_token(token.strip(), ring.verifier)
    except signing.TokenError as exc:
        reason = exc.reason
        msg = signing.TOKEN_REASON_MESSAGES.get(reason, "二维码无效")
        raise ValidationFailed(msg, code=f"token_{reason}", fields={"token": msg}) from None
    permit = session.get(Permit, claims.object_id) if claims.object_id < 2**31 else None
    if claims.kind != signing.KIND_PERMIT or permit is None or permit.enterprise_id != claims.scope_id:
        raise NotFound("二维码不对应任何证明", code="permit_not_found")
    return public_view(session, permit, now or utcnow())
