"""The domains' rows of the periodic table (design/jobs.md), in Asia/Shanghai time.

Each function is ``func(session, now)``: ``now`` is the slot's scheduled time. Rows
that are not here yet are listed in README.md ("Periodic work") as not built.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.periodic import register_periodic
from jobs.queues import DEFAULT, MAINTENANCE, NOTIFICATIONS

TZ = ZoneInfo("Asia/Shanghai")


def quiz_sweep(session: Session, now: datetime) -> dict:
    """Record accepted submits, grade attempts past deadline + grace, finalise
    competitions whose window closed."""
    from flask import current_app

    from services.quiz import attempts, competitions, intake, recording

    recorded = 0
    if intake.enabled(current_app):
        ext = current_app.extensions["zhizhi"]
        recorded = recording.drain_all(ext.db, ext.redis)
    return {
        "submits_recorded": recorded,
        "closed": attempts.close_overdue(session, now),
        "finalized": competitions.finalize_due(session, now),
    }


def quiz_practice_reminder(session: Session, now: datetime) -> dict:
    """08:30: remind grid workers who have not finished today's daily practice."""
    from services.quiz import notices

    return notices.practice_reminders(session, now)


def quiz_competition_notices(session: Session, now: datetime) -> dict:
    """Every 5 minutes: notices 1 day and 30 minutes before a competition window opens."""
    from services.quiz import notices

    return notices.competition_notices(session, now)


def quiz_levels(session: Session, now: datetime) -> dict:
    """Quarterly worker levels for the quarter that just ended, assessed at the slot."""
    from services.quiz import levels

    return levels.snapshot_quarter(session, previous_quarter(now), now)


def permits_daily(session: Session, now: datetime) -> dict:
    """Expiry reminders (30/7/1 days), blocking at expiry, overdue waybills, risk models."""
    from flask import current_app

    from services.permits import ledger_drain, periodic

    ledger_drain.flush(current_app._get_current_object())  # the risk models read the ledger

    return periodic.run_daily(session, now)


def permits_hourly(session: Session, now: datetime) -> dict:
    """Warning SLA clocks and escalation."""
    from services.permits import periodic

    return periodic.run_hourly(session, now)


def previous_quarter(now: datetime) -> str:
    local = now.astimezone(TZ)
    q = (local.month - 1) // 3  # the quarter that just ended (0 = Q4 of last year)
    return f"{local.year - 1}Q4" if q == 0 else f"{local.year}Q{q}"


def permits_star_ratings(session: Session, now: datetime) -> dict:
    """Quarterly star ratings of every enterprise for the quarter that just ended."""
    from flask import current_app

    from models.permits.enterprises import Enterprise
    from services.permits import ledger_drain, ratings

    ledger_drain.flush(current_app._get_current_object())  # ratings read the ledger
    quarter = previous_quarter(now)
    rated = [ratings.rate_quarter(session, e, quarter).stars for e in session.scalars(select(Enterprise.id))]
    return {"quarter": quarter, "rated": len(rated)}


def permits_flush(session: Session, now: datetime) -> dict:
    """Move write-behind ledger events from the Redis stream into the database."""
    from flask import current_app

    from services.permits import ledger_drain

    return {"moved": ledger_drain.flush(current_app._get_current_object())}


def passes_flush(session: Session, now: datetime) -> dict:
    """Move gate scans from the Redis streams into the database (idempotent per nonce)."""
    from flask import current_app

    from jobs.passes import flush_passages

    return {"moved": flush_passages(current_app._get_current_object())}


def passes_visit_reminders(session: Session, now: datetime) -> dict:
    """Remind holders of an active pass the day before their visit (once each)."""
    from services.passes.reminders import send_visit_reminders

    return send_visit_reminders(session, now)


register_periodic(
    "quiz_sweep",
    "* * * * *",
    "jobs.schedule:quiz_sweep",
    queue=MAINTENANCE,
    grace=300,
    description="答卷落库，批改超时答卷，结算已结束的比武",
)
register_periodic(
    "quiz_practice_reminder",
    "30 8 * * *",
    "jobs.schedule:quiz_practice_reminder",
    queue=MAINTENANCE,
    grace=3 * 3600,
    description="每日一练提醒（今日未完成的网格员）",
)
register_periodic(
    "quiz_competition_notices",
    "*/5 * * * *",
    "jobs.schedule:quiz_competition_notices",
    queue=MAINTENANCE,
    grace=300,
    description="比武开赛前 1 天、30 分钟通知参赛范围内的网格员",
)
register_periodic(
    "quiz_levels",
    "0 3 1 1,4,7,10 *",
    "jobs.schedule:quiz_levels",
    queue=DEFAULT,
    grace=7 * 24 * 3600,
    description="网格员季度星级评定，星级变化时通知本人",
)
register_periodic(
    "permits_daily",
    "0 9 * * *",
    "jobs.schedule:permits_daily",
    queue=MAINTENANCE,
    description="证照到期提醒与锁定、运单超期、风险模型",
)
register_periodic(
    "permits_hourly",
    "0 * * * *",
    "jobs.schedule:permits_hourly",
    queue=MAINTENANCE,
    description="预警处置时限与升级",
)
register_periodic(
    "permits_star_ratings",
    "0 3 1 1,4,7,10 *",
    "jobs.schedule:permits_star_ratings",
    queue=DEFAULT,
    grace=7 * 24 * 3600,
    description="企业季度星级评定",
)
register_periodic(
    "passes_flush",
    "* * * * *",
    "jobs.schedule:passes_flush",
    inline=True,
    grace=300,
    description="闸机通行记录落库",
)
register_periodic(
    "permits_flush",
    "* * * * *",
    "jobs.schedule:permits_flush",
    inline=True,
    grace=300,
    description="流向台账事件落库",
)
register_periodic(
    "passes_visit_reminders",
    "0 17 * * *",
    "jobs.schedule:passes_visit_reminders",
    queue=NOTIFICATIONS,
    description="来访前一天提醒通行证持有人",
)
