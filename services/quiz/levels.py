"""Star levels 1–5: a level needs both the engagement floor (points in the last 90 days)
and the competence floor (overall mastery, or a competition finish within a top
fraction), so farming points alone cannot raise a level. Thresholds live in config.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import utcnow
from models.quiz import Attempt, AttemptStatus, Competition, CompetitionStatus, PointEntry, WorkerLevel
from services.quiz import ability
from services.quiz.config import rules_at


def current_level(session: Session, person_id: int) -> int:
    row = session.get(WorkerLevel, person_id)
    return row.level if row else 1


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
