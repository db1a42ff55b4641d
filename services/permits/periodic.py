"""Periodic permits work, called by the scheduler or ``flask permits daily``.

Daily 09:00 Asia/Shanghai: reminders (30/7/1 days), expiry blocking, overdue waybills,
risk models for every enterprise. Hourly: warning SLA escalation. Every step is
idempotent (dedup keys, one signal per subject), so a second run changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.permits.enterprises import Enterprise, EnterpriseStatus
from services.permits import credentials, issuing, risk, warnings, waybills


def run_daily(session: Session, now: datetime) -> dict:
    today = issuing.local_date(now)
    report = {
        "reminders": credentials.queue_reminders(session, today),
        **credentials.apply_expiry(session, today),
        "waybills_overdue": waybills.flag_overdue(session, now),
    }
    fired = 0
    for ent_id in session.scalars(select(Enterprise.id).where(Enterprise.status == EnterpriseStatus.active)):
        fired += sum(bool(v) for v in risk.evaluate_enterprise(session, ent_id, now).values())
    report["risk_models_fired"] = fired
    report["warnings_escalated"] = warnings.escalate_overdue(session, now)
    session.flush()
    return report


def run_hourly(session: Session, now: datetime) -> dict:
    return {"warnings_escalated": warnings.escalate_overdue(session, now)}
