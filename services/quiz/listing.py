"""What a worker or trainer can find: the competitions open to them (with their own entry)
and, for trainers, the papers of their jurisdiction and one worker's attempts. Newest
first, keyset pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import literal, or_, select
from sqlalchemy.orm import Session, aliased, lazyload

from core.auth import Actor, require_jurisdiction, require_role
from core.db import utcnow
from core.errors import NotFound
from core.pagination import cursor_id, encode_cursor
from models.identity import OrgUnit, Person
from models.quiz import Attempt, AttemptStatus, Competition, CompetitionStatus, Paper

TRAINER = ("trainer",)
LEARNER = ("grid_worker", "trainer")


def _home_path(session: Session, actor: Actor) -> str | None:
    return session.scalar(
        select(OrgUnit.path)
        .join(Person, Person.org_unit_id == OrgUnit.id)
        .where(Person.id == actor.person_id)
    )


def _visible(session: Session, actor: Actor, unit_path: Any) -> Any:
    """SQL condition: the unit at ``unit_path`` contains the actor's own unit (a worker
    takes part) or lies inside a jurisdiction the actor governs as trainer or admin."""
    conditions = [unit_path.startswith(p) for p in actor.jurisdictions(*TRAINER)]
    home = _home_path(session, actor)
    if home and actor.has_role("grid_worker"):
        conditions.append(literal(home).startswith(unit_path))
    return or_(*conditions) if conditions else literal(False)


def _phase(comp: Competition, now: datetime) -> str:
    if comp.status == CompetitionStatus.finalized:
        return "results"
    if now < comp.starts_at:
        return "upcoming"
    return "open" if now < comp.ends_at else "closed"


PHASE_LABELS = {
    "upcoming": "未开始",
    "open": "进行中",
    "closed": "已结束，待公布成绩",
    "results": "已公布成绩",
}


def competitions(
    session: Session, actor: Actor, cursor: str | None, limit: int, now: datetime | None = None
) -> dict[str, Any]:
    """Competitions the actor can enter or governs, newest first, each with its phase and
    the caller's own entry (attempt id and status) when there is one."""
    require_role(actor, *LEARNER)
    now = now or utcnow()
    stmt = (
        select(Competition, OrgUnit.name, OrgUnit.path, Paper.title, Paper.duration_seconds)
        .join(OrgUnit, OrgUnit.id == Competition.org_unit_id)
        .join(Paper, Paper.id == Competition.paper_id)
        .where(_visible(session, actor, OrgUnit.path))
        .order_by(Competition.id.desc())
    )
    if cursor:
        stmt = stmt.where(Competition.id < cursor_id(cursor))
    rows = session.execute(stmt.limit(limit + 1)).all()
    page = rows[:limit]
    mine = {
        a.competition_id: a
        for a in session.scalars(
            select(Attempt).where(
                Attempt.person_id == actor.person_id,
                Attempt.competition_id.in_([r[0].id for r in page]),
            )
        )
    }
    items = []
    for comp, unit_name, _path, paper_title, duration in page:
        phase = _phase(comp, now)
        entry = mine.get(comp.id)
        items.append(
            {
                "competition_id": comp.id,
                "title": comp.title,
                "org_unit_id": comp.org_unit_id,
                "org_unit_name": unit_name,
                "paper_title": paper_title,
                "duration_seconds": duration,
                "starts_at": comp.starts_at.isoformat(),
                "ends_at": comp.ends_at.isoformat(),
                "freeze_at": comp.freeze_at.isoformat() if comp.freeze_at else None,
                "phase": phase,
                "phase_label": PHASE_LABELS[phase],
                "my_attempt": {"attempt_id": entry.id, "status": str(entry.status)} if entry else None,
            }
        )
    nxt = encode_cursor(page[-1][0].id) if len(rows) > limit else None
    return {"items": items, "next_cursor": nxt}


def papers(session: Session, actor: Actor, cursor: str | None, limit: int) -> dict[str, Any]:
    """Papers of the trainer's jurisdiction (or without a unit), newest first."""
    require_role(actor, *TRAINER)
    unit_path = select(OrgUnit.path).where(OrgUnit.id == Paper.org_unit_id).scalar_subquery()
    governed = or_(*[unit_path.startswith(p) for p in actor.jurisdictions(*TRAINER)])
    stmt = select(Paper).where(or_(Paper.org_unit_id.is_(None), governed)).order_by(Paper.id.desc())
    if cursor:
        stmt = stmt.where(Paper.id < cursor_id(cursor))
    rows = list(session.scalars(stmt.limit(limit + 1)))
    used = set(
        session.scalars(
            select(Competition.paper_id).where(Competition.paper_id.in_([p.id for p in rows[:limit]]))
        )
    )
    items = [
        {
            "paper_id": p.id,
            "title": p.title,
            "mode": str(p.mode),
            "questions": len(p.question_ids or []) or sum(int(b.get("count", 0)) for b in p.blueprint or []),
            "duration_seconds": p.duration_seconds,
            "grace_seconds": p.grace_seconds,
            "attempts_allowed": p.attempts_allowed,
            "grading": str(p.grading),
            "org_unit_id": p.org_unit_id,
            "competition_paper": p.id in used,
        }
        for p in rows[:limit]
    ]
    nxt = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {"items": items, "next_cursor": nxt}


STATUS_LABELS = {
    AttemptStatus.in_progress: "作答中",
    AttemptStatus.submitted: "已提交",
    AttemptStatus.expired: "超时按已保存答案评分",
}


def worker_attempts(
    session: Session, actor: Actor, person_id: int, cursor: str | None, limit: int
) -> dict[str, Any]:
    """One worker's attempts (tests and competitions), newest first, for a trainer whose
    jurisdiction covers the worker, or the person themself (as for portraits; another
    district: 403). Results of
    a finished attempt are shown, except a competition's before it publishes its results
    (the board is frozen until then). Read-only."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("人员不存在", code="person_not_found")
    if actor.person_id != person_id:
        path = session.scalar(select(OrgUnit.path).where(OrgUnit.id == person.org_unit_id))
        require_jurisdiction(actor, path, *TRAINER)
    comp = aliased(Competition)
    stmt = (
        select(Attempt, Paper.title, comp.title, comp.status)
        .join(Paper, Paper.id == Attempt.paper_id)
        .outerjoin(comp, comp.id == Attempt.competition_id)
        .where(Attempt.person_id == person_id)
        .options(lazyload(Attempt.items))
        .order_by(Attempt.id.desc())
    )
    if cursor:
        stmt = stmt.where(Attempt.id < cursor_id(cursor))
    rows = session.execute(stmt.limit(limit + 1)).all()
    items = [_attempt_row(*row) for row in rows[:limit]]
    nxt = encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    return {"person_id": person.id, "name": person.name, "items": items, "next_cursor": nxt}


def _attempt_row(a: Attempt, paper_title: str, comp_title: str | None, comp_status: Any) -> dict[str, Any]:
    finished = a.status != AttemptStatus.in_progress
    shown = finished and (a.competition_id is None or comp_status == CompetitionStatus.finalized)
    return {
        "attempt_id": a.id,
        "paper_id": a.paper_id,
        "paper_title": paper_title,
        "competition_id": a.competition_id,
        "competition_title": comp_title,
        "number": a.number,
        "status": str(a.status),
        "status_label": STATUS_LABELS[a.status],
        "started_at": a.started_at.isoformat(),
        "submitted_at": a.submitted_at.isoformat() if a.submitted_at else None,
        "results_published": shown,
        "result": {
            "marks": a.marks,
            "max_marks": a.max_marks,
            "answered": a.answered,
            "correct": a.correct,
            "accuracy": a.accuracy_bp / 100,
            "elapsed_seconds": a.elapsed_ms / 1000,
        }
        if shown
        else None,
    }
