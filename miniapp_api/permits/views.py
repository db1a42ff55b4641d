"""Output shapes shared by the permits routes (no personal data beyond masked names)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from models.permits.applications import Application, Permit
from models.permits.ledger import LedgerEvent, Waybill
from models.permits.risk import Warning
from services.permits.catalogue import qty


def application(app: Application, permit: Permit | None) -> dict[str, Any]:
    return {
        "id": app.id,
        "purpose": app.purpose.value,
        "status": app.status.value,
        "reasons": app.reasons,
        "rules_version": app.rules_version,
        "permit": permit_out(permit) if permit else None,
    }


def permit_out(p: Permit) -> dict[str, Any]:
    return {
        "id": p.id,
        "number": p.number,
        "purpose": p.purpose.value,
        "form": p.form.value,
        "status": p.status.value,
        "quantity": str(p.quantity),
        "remaining": str(p.remaining),
        "unit": p.unit,
        "valid_from": p.valid_from.isoformat(),
        "valid_until": p.valid_until.isoformat(),
        "qr": p.token,
        "certificate_ready": p.cert_path is not None,
    }


def event(ev: LedgerEvent) -> dict[str, Any]:
    """Quantities always with three decimals, as stored (the write-behind answer matches)."""
    return {
        "id": ev.id,
        "kind": ev.kind.value,
        "status": ev.status.value,
        "site_id": ev.site_id,
        "chemical_id": ev.chemical_id,
        "quantity": qty(ev.quantity),
        "unit": ev.unit,
        "occurred_at": ev.occurred_at.astimezone(UTC).isoformat(),
        "waybill_id": ev.waybill_id,
        "balance_after": None if ev.balance_after is None else qty(ev.balance_after),
        "variance": None if ev.variance is None else qty(ev.variance),
        "corrects_id": ev.corrects_id,
        "idempotency_key": ev.idempotency_key,
    }


def waybill(wb: Waybill) -> dict[str, Any]:
    q = {
        f: None if getattr(wb, f) is None else str(getattr(wb, f))
        for f in ("shipped", "departed", "arrived", "received")
    }
    return {"id": wb.id, "number": wb.number, "status": wb.status.value, "planned": str(wb.planned), **q}


def warning(w: Warning) -> dict[str, Any]:
    return {
        "id": w.id,
        "enterprise_id": w.enterprise_id,
        "risk_type": w.risk_type,
        "department": w.department,
        "status": w.status.value,
        "due_at": w.due_at.isoformat(),
        "escalation_level": w.escalation_level,
        "feedback": w.feedback,
        "evaluation": w.evaluation,
    }
