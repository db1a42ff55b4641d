"""Star levels 1–5: a level needs both the engagement floor (points in the last 90 days)
and the competence floor (overall mastery, or a competition finish within a top
fraction), so farming points alone cannot raise a level. Thresholds live in config.py.

Recomputed on demand (``assess``) and quarterly: ``snapshot_quarter`` (the periodic row)
queues batches of workers without a snapshot for the quarter; ``snapshot_workers`` (the
batch job) assesses each at the row's slot time, stores the level (``WorkerLevel``, the
competition bracket) and a ``LevelSnapshot`` per worker and quarter, and notifies the
workers whose level changed (dedup key ``level:{person}:{quarter}``). Running a quarter
twice changes and sends nothing.

The stored level is the worker's level everywhere (``current_level``): API, portrait,
chat and competition bracket. A fresh ``assess`` is only ever shown as progress
(``level_view``: what today's data reaches and what the next level needs), never as
the level, so one worker never sees two star counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import utcnow
from models.identity import Person
from models.quiz import (
    Attempt,
    AttemptStatus,
    Competition,
    CompetitionStatus,
    LevelSnapshot,
    PointEntry,
    WorkerLevel,
)
from services.quiz import ability, roster
from services.quiz.config import rules_at

LEVEL_KIND = "quiz.level_changed"
SNAPSHOT_JOB = "quiz.level_snapshots"
SNAPSHOT_BATCH = 200


def current_level(session: Session, person_id: int) -> int:
    """The worker's level: the stored one (``WorkerLevel``, set by the quarterly
    assessment), 1 before the first. The one source of "current level" for every channel:
    the API, the portrait, chat 积分 and the competition bracket."""
    row = session.get(WorkerLevel, person_id)
    return row.level if row else 1


PROGRESS_NOTE = "进度按当前数据实时计算，仅供参考；星级每季度评定一次，下次评定时才会变化"


def level_view(session: Session, person_id: int, now: datetime | None = None) -> dict[str, Any]:
    """The worker's current (stored) level, and separately, labelled as progress, what
    their data reaches today and what the next level above that needs. Read-only."""
    now = now or utcnow()
    row = session.get(WorkerLevel, person_id)
    level = row.level if row else 1
    fresh = assess(session, person_id, now, store=False)
    return {
        "level": level,
        "stars": "★" * level,
        "assessed_at": row.computed_at.isoformat() if row else None,
        "rules_version": row.rules_version if row else None,
        "progress": {
            "label": "升级进度",
            "note": PROGRESS_NOTE,
            "as_of": now.isoformat(),
            "reachable_level": fresh["level"],
            "reachable_stars": fresh["stars"],
            "evidence": fresh["evidence"],
            "next": fresh["next"],
            "rules_version": fresh["rules_version"],
        },
    }


def evidence(session: Session, person_id: int, now: datetime) -> dict[str, Any]:
    since = now - timedelta(days=90)
    pts = session.scalar(
        select(func.coalesce(func.sum(PointEntry.delta), 0)).where(
            PointEntry.person_id == person_id, PointEntry.created_at >= since
        )
    )
    topics = ability.mastery_by_person(session, [person_id]).get(person_id, {})
    return {
        "points_90d": int(pts or 0),
        "ability": ability.overall(topics),
        "best_percentile": best_percentile(session, person_id, since),
    }


def best_percentile(session: Session, person_id: int, since: datetime) -> float | None:
    """Best rank/N (0..1, smaller is better) over finalised competitions since ``since``."""
    from services.quiz import leaderboard

    best = None
    comps = session.scalars(
        select(Competition)
        .join(Attempt, Attempt.competition_id == Competition.id)
        .where(
            Attempt.person_id == person_id,
            Competition.status == CompetitionStatus.finalized,
            Competition.ends_at >= since,
        )
    )
    for comp in comps:
        ids = list(
            session.scalars(
                select(Attempt.person_id)
                .where(
                    Attempt.competition_id == comp.id,
                    Attempt.status.in_((AttemptStatus.submitted, AttemptStatus.expired)),
                )
                .order_by(*leaderboard.order_by())
            )
        )
        if person_id in ids:
            p = (ids.index(person_id) + 1) / len(ids)
            best = p if best is None else min(best, p)
    return best


def _meets(rule, ev: dict[str, Any]) -> tuple[bool, bool]:
    engaged = ev["points_90d"] >= rule.points_90d
    able = (ev["ability"] or 0) >= rule.ability or (
        rule.percentile is not None
        and ev["best_percentile"] is not None
        and ev["best_percentile"] <= rule.percentile
    )
    return engaged, able


def assess(
    session: Session, person_id: int, now: datetime | None = None, store: bool = True
) -> dict[str, Any]:
    """Compute the level now and what the next one needs; stores it (WorkerLevel) unless
    ``store`` is False. Idempotent for the same inputs."""
    now = now or utcnow()
    rules = rules_at(now)
    ev = evidence(session, person_id, now)
    level = 1
    nxt = None
    for rule in rules.levels:
        engaged, able = _meets(rule, ev)
        if engaged and able:
            level = rule.level
            continue
        needs = []
        if not engaged:
            needs.append(f"近90天积分达到 {rule.points_90d}（当前 {ev['points_90d']}）")
        if not able:
            pct = f"，或月度比武进入前 {int(rule.percentile * 100)}%" if rule.percentile else ""
            needs.append(f"综合掌握度达到 {rule.ability:g}（当前 {ev['ability'] or 0:g}）{pct}")
        nxt = {"level": rule.level, "needs": needs}
        break
    if store:
        row = session.get(WorkerLevel, person_id)
        if row is None:
            row = WorkerLevel(person_id=person_id, rules_version=rules.version, computed_at=now)
            session.add(row)
        row.level, row.rules_version, row.computed_at = level, rules.version, now
        session.flush()
    return {"level": level, "stars": "★" * level, "evidence": ev, "next": nxt, "rules_version": rules.version}


def thresholds(now: datetime | None = None) -> dict[str, Any]:
    """The published thresholds."""
    rules = rules_at(now or utcnow())
    return {
        "version": rules.version,
        "source": rules.source_note,
        "levels": [
            {"level": r.level, "points_90d": r.points_90d, "ability": r.ability, "percentile": r.percentile}
            for r in rules.levels
        ],
    }


def quarter_label(quarter: str) -> str:
    """``2026Q1`` -> ``2026年第1季度``."""
    year, _, q = quarter.partition("Q")
    return f"{year}年第{q}季度"


def snapshot_quarter(session: Session, quarter: str, at: datetime) -> dict[str, Any]:
    """The quarterly row: queue assessment batches (as of ``at``) for every active grid
    worker without a snapshot for ``quarter``. Flushes."""
    missing = ~exists().where(LevelSnapshot.person_id == Person.id, LevelSnapshot.quarter == quarter)
    queued = roster.fan_out(
        session,
        SNAPSHOT_JOB,
        {"quarter": quarter, "at": at.isoformat()},
        roster.worker_batches(session, where=[missing], batch=SNAPSHOT_BATCH),
        f"quiz-levels:{quarter}",
    )
    return {"quarter": quarter, "batches": queued}


def previous_level(session: Session, person_id: int, quarter: str) -> int:
    """The level before ``quarter``: the latest earlier snapshot, else the stored level."""
    last = session.scalar(
        select(LevelSnapshot.level)
        .where(LevelSnapshot.person_id == person_id, LevelSnapshot.quarter < quarter)
        .order_by(LevelSnapshot.quarter.desc())
        .limit(1)
    )
    return last if last is not None else current_level(session, person_id)


def snapshot_workers(session: Session, quarter: str, at: datetime, person_ids: list[int]) -> dict[str, Any]:
    """One batch: assess, store and snapshot each worker not yet snapshotted for the
    quarter; notify the ones whose level changed. Flushes."""
    from services.notify import notify

    done = set(
        session.scalars(
            select(LevelSnapshot.person_id).where(
                LevelSnapshot.quarter == quarter, LevelSnapshot.person_id.in_(person_ids)
            )
        )
    )
    assessed, changed = 0, []
    for pid in person_ids:
        if pid in done:
            continue
        before = previous_level(session, pid, quarter)
        try:
            with session.begin_nested():
                res = assess(session, pid, at, store=True)
                session.add(
                    LevelSnapshot(
                        person_id=pid,
                        quarter=quarter,
                        level=res["level"],
                        previous_level=before,
                        evidence=res["evidence"],
                        rules_version=res["rules_version"],
                        computed_at=at,
                    )
                )
        except IntegrityError:
            continue  # an overlapping batch snapshotted this worker first
        assessed += 1
        if res["level"] != before:
            up = res["level"] > before
            data = {
                "quarter": quarter_label(quarter),
                "old": before,
                "new": res["level"],
                "change": "提升为" if up else "调整为",
                "hint": "继续保持！" if up else "可在“我的星级”查看各星级的积分和掌握度要求。",
            }
            notify(session, pid, LEVEL_KIND, data, f"level:{pid}:{quarter}")
            changed.append(pid)
    return {"quarter": quarter, "assessed": assessed, "changed": changed}


def history(session: Session, person_id: int, limit: int = 40) -> dict[str, Any]:
    """The worker's quarterly levels, newest first."""
    rows = session.scalars(
        select(LevelSnapshot)
        .where(LevelSnapshot.person_id == person_id)
        .order_by(LevelSnapshot.quarter.desc())
        .limit(limit)
    )
    return {
        "items": [
            {
                "quarter": r.quarter,
                "label": quarter_label(r.quarter),
                "level": r.level,
                "stars": "★" * r.level,
                "previous_level": r.previous_level,
                "changed": r.level != r.previous_level,
                "evidence": r.evidence,
                "rules_version": r.rules_version,
                "computed_at": r.computed_at.isoformat(),
            }
            for r in rows
        ]
    }
