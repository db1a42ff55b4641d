"""Portraits (画像): per worker and per org unit, with jurisdiction checks. A worker reads
their own; a trainer reads those inside their jurisdiction (another district: 403)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import outbox
from core.auth import Actor, require_jurisdiction
from core.db import utcnow
from core.errors import Forbidden, NotFound
from models.identity import OrgUnit, Person, Role, RoleGrant
from models.quiz import AnswerEvent, Attempt, Competition, PointEntry, Topic
from services.quiz import ability, levels, points
from services.quiz.config import SHANGHAI, local_day

WEAK_BELOW = 60.0


def _person_path(session: Session, person_id: int) -> tuple[Person, str | None]:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("人员不存在", code="person_not_found")
    path = (
        session.scalar(select(OrgUnit.path).where(OrgUnit.id == person.org_unit_id))
        if person.org_unit_id
        else None
    )
    return person, path


def can_read_worker(session: Session, actor: Actor, person_id: int) -> Person:
    person, path = _person_path(session, person_id)
    if actor.person_id != person_id:
        require_jurisdiction(actor, path, "trainer")
    return person


def topic_names(session: Session) -> list[str]:
    return list(session.scalars(select(Topic.name).order_by(Topic.id)))


def worker(session: Session, actor: Actor, person_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Mastery per topic (recency-weighted ability), weak topics, the "x of the last 7
    days" streak, practice/competition history, level and points. Read-only."""
    now = now or utcnow()
    person = can_read_worker(session, actor, person_id)
    mastery = ability.mastery_by_person(session, [person_id]).get(person_id, {})
    topics = [
        {"topic": t, **mastery.get(t, {"mastery": None, "answers": 0, "correct": 0})}
        for t in topic_names(session)
    ]
    weak = sorted(
        (t for t in topics if t["answers"] and t["mastery"] < WEAK_BELOW), key=lambda t: t["mastery"]
    )
    days = active_days(session, person_id, now)
    return {
        "person_id": person_id,
        "name": person.name,
        "topics": topics,
        "overall": ability.overall(mastery),
        "weak_topics": [t["topic"] for t in weak[:3]],
        "streak": {"active_days_last_7": days, "text": f"近 7 天有 {days} 天参与学习"},
        "history": history(session, person_id, now),
        "level": levels.level_view(session, person_id, now),
        "points": points.standing(session, person_id),
    }


def active_days(session: Session, person_id: int, now: datetime) -> int:
    today = local_day(now)
    start = datetime(today.year, today.month, today.day, tzinfo=SHANGHAI) - timedelta(days=6)
    stamps = session.scalars(
        select(AnswerEvent.answered_at).where(
            AnswerEvent.person_id == person_id, AnswerEvent.answered_at >= start
        )
    )
    return len({local_day(s) for s in stamps if s <= now})


def history(session: Session, person_id: int, now: datetime, days: int = 30) -> dict[str, Any]:
    since = now - timedelta(days=days)
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for at, ok in session.execute(
        select(AnswerEvent.answered_at, AnswerEvent.correct).where(
            AnswerEvent.person_id == person_id, AnswerEvent.answered_at >= since
        )
    ):
        d = local_day(at).isoformat()
        per_day[d][0] += 1
        per_day[d][1] += int(ok)
    comps = session.execute(
        select(Competition.id, Competition.title, Attempt.marks, Attempt.max_marks)
        .join(Attempt, Attempt.competition_id == Competition.id)
        .where(Attempt.person_id == person_id)
        .order_by(Competition.starts_at.desc())
        .limit(12)
    ).all()
    return {
        "days": [{"day": d, "answered": a, "correct": c} for d, (a, c) in sorted(per_day.items())],
        "competitions": [
            {"competition_id": i, "title": t, "marks": m, "max_marks": mx} for i, t, m, mx in comps
        ],
    }


def governed_unit(session: Session, actor: Actor, unit_id: int) -> OrgUnit:
    org = session.get(OrgUnit, unit_id)
    if org is None:
        raise NotFound("组织不存在", code="org_unit_not_found")
    if not actor.covers(org.path, "trainer"):
        raise Forbidden("不在您的管辖范围内", code="out_of_jurisdiction")
    return org


def _workers_under(session: Session, path: str) -> list[tuple[int, str]]:
    return list(
        session.execute(
            select(Person.id, OrgUnit.path)
            .join(OrgUnit, OrgUnit.id == Person.org_unit_id)
            .join(RoleGrant, RoleGrant.person_id == Person.id)
            .where(RoleGrant.role == Role.grid_worker, OrgUnit.path.startswith(path), Person.active.is_(True))
            .distinct()
        ).all()
    )


def unit(session: Session, actor: Actor, unit_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Participation (last 30 days), topic × child-unit mastery matrix, weakest topics and
    suggested training for a unit of the trainer's jurisdiction. Read-only."""
    now = now or utcnow()
    org = governed_unit(session, actor, unit_id)
    workers = _workers_under(session, org.path)
    ids = [pid for pid, _ in workers]
    active = (
        set(
            session.scalars(
                select(AnswerEvent.person_id)
                .where(AnswerEvent.person_id.in_(ids), AnswerEvent.answered_at >= now - timedelta(days=30))
                .group_by(AnswerEvent.person_id)
            )
        )
        if ids
        else set()
    )
    mastery = ability.mastery_by_person(session, ids) if ids else {}
    children = list(session.scalars(select(OrgUnit).where(OrgUnit.parent_id == org.id).order_by(OrgUnit.id)))
    rows = children or [org]
    names = topic_names(session)
    matrix = []
    for child in rows:
        members = [pid for pid, path in workers if path.startswith(child.path)]
        matrix.append(
            {
                "unit_id": child.id,
                "unit": child.name,
                "workers": len(members),
                "mastery": [_mean(mastery, members, t) for t in names],
            }
        )
    overall = {t: _mean(mastery, ids, t) for t in names}
    weakest = sorted((t for t in names if overall[t] is not None), key=lambda t: overall[t])[:3]
    return {
        "unit_id": org.id,
        "unit": org.name,
        "workers": len(ids),
        "participation": {
            "active_30d": len(active),
            "rate": round(len(active) / len(ids), 3) if ids else 0.0,
        },
        "topics": names,
        "matrix": matrix,
        "weakest_topics": [{"topic": t, "mastery": overall[t]} for t in weakest],
        "suggested_training": [_suggest(t, overall[t], matrix, names.index(t)) for t in weakest],
    }


def _mean(mastery: dict[int, dict[str, Any]], ids: list[int], topic: str) -> float | None:
    vals = [mastery[p][topic]["mastery"] for p in ids if p in mastery and topic in mastery[p]]
    return round(sum(vals) / len(vals), 1) if vals else None


def _suggest(topic: str, score: float | None, matrix: list[dict[str, Any]], col: int) -> str:
    low = sorted((r for r in matrix if r["mastery"][col] is not None), key=lambda r: r["mastery"][col])[:2]
    where = "、".join(r["unit"] for r in low)
    return f"建议围绕「{topic}」组织专题培训（平均掌握度 {score}），重点关注：{where}"


def request_picture(
    session: Session, actor: Actor, kind: str, target_id: int, now: datetime | None = None
) -> dict:
    """Queue the PNG render (radar for a worker, heatmap for a unit) after commit. The
    picture is named by its day and the newest data it shows (the last answer, and for a
    worker the last points entry), so repeated requests without new data share one job
    (dedup key) and new data gets a new picture. ``url`` downloads it once rendered."""
    now = now or utcnow()
    if kind == "worker":
        can_read_worker(session, actor, target_id)
        last_answer = select(func.max(AnswerEvent.id)).where(AnswerEvent.person_id == target_id)
        last_points = select(func.max(PointEntry.id)).where(PointEntry.person_id == target_id)
        data = f"{session.scalar(last_answer) or 0}-{session.scalar(last_points) or 0}"
    else:
        governed_unit(session, actor, target_id)
        data = str(session.scalar(select(func.max(AnswerEvent.id))) or 0)
    day = local_day(now).isoformat()
    tag = f"{day}-{data}"
    job_kind = "quiz.worker_radar" if kind == "worker" else "quiz.unit_heatmap"
    payload = {"id": target_id, "day": day, "tag": tag}
    outbox.add(session, job_kind, payload, dedup_key=f"{job_kind}:{target_id}:{tag}")
    name = picture_name(kind, target_id, tag)
    return {
        "kind": kind,
        "id": target_id,
        "file": name,
        "url": f"/api/v1/quiz/portraits/{kind}s/{target_id}/picture/{name.rsplit('/', 1)[1]}",
        "ready": _picture_path(name).is_file(),
    }


def picture_name(kind: str, target_id: int, tag: str) -> str:
    return f"quiz/{kind}-{target_id}-{tag}.png"


def _picture_path(name: str) -> Path:
    from services.quiz import cache

    return Path(cache.app().extensions["zhizhi"].settings.file_store_dir) / name


def picture(session: Session, actor: Actor, kind: str, target_id: int, filename: str) -> bytes:
    """The rendered PNG ``filename`` of this worker/unit, for whoever may read the portrait."""
    if kind == "worker":
        can_read_worker(session, actor, target_id)
    else:
        governed_unit(session, actor, target_id)
    if not re.fullmatch(rf"{kind}-{target_id}-[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}(-[0-9]+)*\.png", filename):
        raise NotFound("图片不存在", code="picture_not_found")
    path = _picture_path(f"quiz/{filename}")
    if not path.is_file():
        raise NotFound("图片还在生成，请稍后再试", code="picture_not_ready")
    return path.read_bytes()


def participation_count(session: Session) -> int:
    return int(session.scalar(select(func.count(func.distinct(AnswerEvent.person_id)))) or 0)
