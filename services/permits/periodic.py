"""Periodic permits work, called by the scheduler or ``flask permits daily``.

Daily 09:00 Asia/Shanghai: reminders (30/7/1 days), expiry blocking, overdue waybills,
risk models for every enterprise. Hourly: warning SLA escalation. Every step is
idempotent (dedup keys, one signal per subject), so a second run changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import outbox
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


DAILY_JOB = "permits.daily"
HOURLY_JOB = "permits.hourly"
DAILY_AT = time(9, 0)  # Asia/Shanghai (design/jobs.md)


def next_daily(now: datetime) -> datetime:
    local = now.astimezone(issuing.TZ)
    run = datetime.combine(local.date(), DAILY_AT, issuing.TZ)
    return (run if run > local else run + timedelta(days=1)).astimezone(UTC)


def schedule(session: Session, now: datetime) -> dict:
    """Queue the next daily (09:00) and hourly runs as outbox rows; idempotent per slot.

    The handlers schedule their successor, so one call starts the chain; the outbox
    reconciler (``flask jobs run-due`` / the maintenance worker) runs rows when due,
    and the dedup keys keep a second scheduler from doubling any run.
    """
    daily_at = next_daily(now)
    hourly_at = (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    return {
        "daily": outbox.add(
            session, DAILY_JOB, {}, dedup_key=f"permits-daily:{daily_at:%Y-%m-%dT%H}", run_at=daily_at
        ),
        "hourly": outbox.add(
            session, HOURLY_JOB, {}, dedup_key=f"permits-hourly:{hourly_at:%Y-%m-%dT%H}", run_at=hourly_at
        ),
    }
