"""Quiz reminders (design/jobs.md, "Reminders and periodic work", Asia/Shanghai):

- daily 08:30: a daily-practice reminder to every grid worker who has not finished
  today's practice (``practice.start_daily``'s set for the Shanghai day; a worker with
  no set yet has not started). Dedup key ``practice:{person}:{yyyy-mm-dd}``.
- before a competition window opens (1 day, 30 minutes): a notice to the workers of
  the competition's org subtree (who may enter). Dedup key
  ``competition:{competition}:{person}:{minutes}``.

Periodic functions take the slot time and only queue work: workers are listed in
keyset batches and each batch becomes an outbox row (``roster.fan_out``); the batch
jobs (jobs/quiz.py) call ``remind_practice`` / ``notify_competition``, which go
through ``services.notify`` (one notification row + ``push.send`` per worker). A retry,
a second scheduler or an overlapping run sends nothing twice.

Finding due competitions is one range scan of ``ix_quiz_competitions_status_starts``
over the competitions starting within the next day, skipping those whose current stage
is already queued (``Competition.notified_minutes``): the cost follows what is due.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from models.identity import OrgUnit
from models.quiz import Competition, CompetitionStatus, PracticeItem
from services.notify import notify
from services.quiz import roster
from services.quiz.config import SHANGHAI, local_day, rules_at

PRACTICE_KIND = "quiz.practice_reminder"
COMPETITION_KIND = "quiz.competition_notice"
PRACTICE_JOB = "quiz.practice_reminders"
COMPETITION_JOB = "quiz.competition_notices"

#: Minutes before ``starts_at`` at which a notice goes out (1 day, 30 minutes).
NOTICE_OFFSETS: tuple[int, ...] = (24 * 60, 30)


def practice_key(person_id: int, day: date) -> str:
    return f"practice:{person_id}:{day.isoformat()}"


def competition_key(competition_id: int, person_id: int, minutes: int) -> str:
    return f"competition:{competition_id}:{person_id}:{minutes}"


# -- daily practice -----------------------------------------------------------------


def practice_reminders(session: Session, now: datetime) -> dict[str, Any]:
    """The 08:30 row: queue reminder batches for the Shanghai day of ``now``."""
    day = local_day(now)
    queued = roster.fan_out(
        session,
        PRACTICE_JOB,
        {"day": day.isoformat()},
        roster.worker_batches(session),
        f"quiz-practice:{day}",
    )
    return {"day": day.isoformat(), "batches": queued}


def remind_practice(session: Session, person_ids: list[int], day: date, now: datetime) -> dict[str, Any]:
    """One batch: notify each of ``person_ids`` whose practice of ``day`` is not finished
    (no set yet, or unanswered items left). A batch run after that day is over sends
    nothing (a stale reminder is worse than none). Flushes."""
    if local_day(now) > day:
        return {"day": day.isoformat(), "skipped": "stale", "reminded": 0}
    progress = {
        pid: (total, answered)
        for pid, total, answered in session.execute(
            select(PracticeItem.person_id, func.count(), func.count(PracticeItem.answered_at))
            .where(PracticeItem.person_id.in_(person_ids), PracticeItem.day == day)
            .group_by(PracticeItem.person_id)
        )
    }
    rules = rules_at(now)
    cap = rules.sources["practice"].cap
    reminded = 0
    for pid in person_ids:
        total, answered = progress.get(pid, (0, 0))
        if total and answered >= total:
            continue
        data = {
            "day": f"{day.month}月{day.day}日",
            "remaining": total - answered if total else rules.daily_size,
            "per_correct": rules.practice_per_correct,
            "cap": cap if cap is not None else "不限",
        }
        notify(session, pid, PRACTICE_KIND, data, practice_key(pid, day))
        reminded += 1
    return {"day": day.isoformat(), "reminded": reminded, "finished": len(person_ids) - reminded}


# -- competition notices ------------------------------------------------------------


def stage(starts_at: datetime, now: datetime) -> int | None:
    """The nearest notice offset (minutes) whose time has come, None if none has."""
    due = [m for m in NOTICE_OFFSETS if starts_at - timedelta(minutes=m) <= now]
    return min(due) if due else None


def due_query(now: datetime) -> Select[tuple[Competition]]:
    """Scheduled competitions starting within the largest offset whose nearest stage may
    not be queued yet: a range on ``ix_quiz_competitions_status_starts``."""
    horizon = now + timedelta(minutes=max(NOTICE_OFFSETS))
    return (
        select(Competition)
        .where(
            Competition.status == CompetitionStatus.scheduled,
            Competition.starts_at > now,
            Competition.starts_at <= horizon,
            or_(Competition.notified_minutes.is_(None), Competition.notified_minutes > min(NOTICE_OFFSETS)),
        )
        .order_by(Competition.starts_at, Competition.id)
    )


def due_competitions(session: Session, now: datetime) -> list[Competition]:
    """The competitions whose nearest stage has come and is not queued yet; locked
    against an overlapping run on PostgreSQL (skipped there, not waited for)."""
    out = []
    for comp in session.scalars(due_query(now).with_for_update(skip_locked=True)):
        m = stage(comp.starts_at, now)
        if m is not None and (comp.notified_minutes is None or m < comp.notified_minutes):
            out.append(comp)
    return out


def competition_notices(session: Session, now: datetime) -> dict[str, Any]:
    """The every-5-minutes row: for each due competition, queue notice batches to the
    workers of its org subtree for the nearest stage (a stage missed while nothing ran
    is not sent late once a nearer one is due), and record the stage. Flushes."""
    out = []
    for comp in due_competitions(session, now):
        m = stage(comp.starts_at, now)
        assert m is not None
        unit = session.get(OrgUnit, comp.org_unit_id)
        batches = roster.worker_batches(session, unit_path=unit.path) if unit is not None else iter(())
        queued = roster.fan_out(
            session,
            COMPETITION_JOB,
            {"competition_id": comp.id, "minutes": m},
            batches,
            f"quiz-competition:{comp.id}:{m}",
        )
        comp.notified_minutes = m
        out.append({"competition_id": comp.id, "minutes": m, "batches": queued})
    session.flush()
    return {"notices": out}


def notify_competition(
    session: Session, competition_id: int, minutes: int, person_ids: list[int], now: datetime
) -> dict[str, Any]:
    """One batch of a notice stage. Nothing is sent for a competition that is gone,
    finalised or already over. Flushes."""
    comp = session.get(Competition, competition_id)
    if comp is None or comp.status != CompetitionStatus.scheduled or now >= comp.ends_at:
        return {"competition_id": competition_id, "skipped": "closed", "notified": 0}
    data = {
        "title": comp.title,
        "starts": starts_text(comp.starts_at, now),
        "ends": clock_text(comp.ends_at, now),
    }
    for pid in person_ids:
        notify(session, pid, COMPETITION_KIND, data, competition_key(comp.id, pid, minutes))
    return {"competition_id": comp.id, "minutes": minutes, "notified": len(person_ids)}


def clock_text(at: datetime, now: datetime) -> str:
    """``今天 09:00`` / ``明天 09:00`` / ``3月7日 09:00`` in Shanghai time."""
    local, today = at.astimezone(SHANGHAI), local_day(now)
    d = local.date()
    if d == today:
        day = "今天"
    elif d == today + timedelta(days=1):
        day = "明天"
    else:
        day = f"{d.month}月{d.day}日"
    return f"{day} {local:%H:%M}"


def starts_text(starts_at: datetime, now: datetime) -> str:
    left = (starts_at - now).total_seconds()
    if left <= 0:
        return f"已于{clock_text(starts_at, now)}开始"
    if left <= 2 * 3600:
        return f"将于 {math.ceil(left / 60)} 分钟后（{clock_text(starts_at, now)}）开始"
    return f"将于{clock_text(starts_at, now)}开始"
