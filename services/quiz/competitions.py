"""Competitions (月度比武): a window, one attempt per worker, leaderboards per scope and
bracket, freeze before the end, results and percentile points at the end, item statistics."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Actor, require_jurisdiction, require_role
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from models.identity import OrgUnit, Person
from models.quiz import Attempt, AttemptItem, AttemptStatus, Competition, CompetitionStatus, Paper
from services.quiz import attempts, leaderboard, levels, points
from services.quiz.config import rules_at

TRAINER = ("trainer",)
log = logging.getLogger(__name__)


def get(session: Session, comp_id: int) -> Competition:
    comp = session.get(Competition, comp_id)
    if comp is None:
        raise NotFound("比武活动不存在", code="competition_not_found")
    return comp


def _unit(session: Session, unit_id: int) -> OrgUnit:
    unit = session.get(OrgUnit, unit_id)
    if unit is None:
        raise NotFound("组织不存在", code="org_unit_not_found")
    return unit


def _inside(session: Session, person_id: int, unit_path: str) -> bool:
    """The person belongs to a unit inside the subtree ``unit_path``."""
    path = session.scalar(
        select(OrgUnit.path).join(Person, Person.org_unit_id == OrgUnit.id).where(Person.id == person_id)
    )
    return bool(path) and path.startswith(unit_path)


def create(session: Session, actor: Actor, spec: dict[str, Any]) -> Competition:
    """Trainer schedules a competition for a unit of their jurisdiction.

    A paper serves one competition only: its answers are public once that competition
    publishes results (and its questions once anyone has seen them), so a second
    competition on it is refused (422 ``paper_used_by_competition``, field ``paper_id``)
    rather than silently copied: a copy would hold the same questions. The trainer makes
    a new paper (a blueprint paper draws fresh questions). The paper row is locked while
    checking, so two trainers cannot both take it."""
    unit = _unit(session, spec["org_unit_id"])
    require_jurisdiction(actor, unit.path, *TRAINER)
    paper = attempts.get_paper(session, spec["paper_id"])
    _check_paper_unused(session, paper.id)
    starts, ends, freeze = spec["starts_at"], spec["ends_at"], spec.get("freeze_at")
    if ends <= starts:
        raise ValidationFailed(fields={"ends_at": "结束时间应晚于开始时间"})
    if freeze is not None and not starts <= freeze <= ends:
        raise ValidationFailed(fields={"freeze_at": "封榜时间应在比武时间段内"})
    if paper.duration_seconds > 6 * 3600:
        raise ValidationFailed(fields={"paper_id": "比武单次作答时长不能超过 6 小时"})
    if paper.org_unit_id is not None and not unit.path.startswith(_unit(session, paper.org_unit_id).path):
        raise ValidationFailed(fields={"paper_id": "该试卷不面向本次比武的组织"})
    plain = select(Attempt.id).where(Attempt.paper_id == paper.id, Attempt.competition_id.is_(None))
    if session.scalar(plain.limit(1)) is not None:
        raise ValidationFailed(fields={"paper_id": "该试卷已用作普通测试，题目可能已泄露，请为比武另建试卷"})
    comp = Competition(
        title=spec["title"],
        paper_id=paper.id,
        org_unit_id=unit.id,
        starts_at=starts,
        ends_at=ends,
        freeze_at=freeze,
        created_by_id=actor.person_id,
    )
    session.add(comp)
    session.flush()
    return comp


def _check_paper_unused(session: Session, paper_id: int) -> None:
    """Refuse a paper that a competition already uses (locks the paper row first)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Paper.id).where(Paper.id == paper_id).with_for_update())
    other = session.execute(
        select(Competition.id, Competition.title)
        .where(Competition.paper_id == paper_id)
        .order_by(Competition.id)
        .limit(1)
    ).first()
    if other is not None:
        raise ValidationFailed(
            f"该试卷已用于比武《{other.title}》，成绩公布后答案即公开，请为本次比武另建试卷",
            code="paper_used_by_competition",
            fields={"paper_id": f"已用于比武《{other.title}》（编号 {other.id}）"},
            details={"competition_id": other.id},
        )


def enter(session: Session, actor: Actor, comp_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Start (or resume) the worker's single attempt inside the window."""
    require_role(actor, "grid_worker")
    now = now or utcnow()
    comp = get(session, comp_id)
    if now < comp.starts_at:
        raise Conflict("比武尚未开始", code="competition_not_open")
    if now >= comp.ends_at or comp.status == CompetitionStatus.finalized:
        raise Conflict("比武已结束", code="competition_closed")
    if not _inside(session, actor.person_id, _unit(session, comp.org_unit_id).path):
        raise Forbidden("您不在本次比武的参赛范围内", code="not_in_competition_scope")
    mine = session.scalar(
        select(Attempt).where(Attempt.competition_id == comp.id, Attempt.person_id == actor.person_id)
    )
    if mine is not None and mine.status != AttemptStatus.in_progress:
        raise Conflict("每人只能参加一次", code="already_attempted")
    bracket = levels.current_level(session, actor.person_id)
    return attempts.start(session, actor, comp.paper_id, now, competition=comp, bracket=bracket)


def board(
    session: Session,
    actor: Actor,
    comp_id: int,
    unit_id: int | None,
    bracket: str,
    limit: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Leaderboard of one scope and bracket. Until finalised it shows the pre-freeze view.
    Readers: workers inside the competition's unit, trainers (and admins) governing it;
    the scope must be a community/street/district inside that unit."""
    now = now or utcnow()
    comp = get(session, comp_id)
    home = _unit(session, comp.org_unit_id)
    if not actor.covers(home.path, *TRAINER) and not _inside(session, actor.person_id, home.path):
        raise Forbidden("您不在本次比武的范围内，不能查看排行榜", code="not_in_competition_scope")
    if unit_id is not None and unit_id != home.id:
        scope = session.get(OrgUnit, unit_id)
        if scope is None or not scope.path.startswith(home.path):
            raise ValidationFailed(fields={"scope_unit_id": "不在本次比武的范围内"})
        if scope.level not in leaderboard.SCOPE_LEVELS:
            raise ValidationFailed(fields={"scope_unit_id": "排行榜按社区、街道或区查看"})
    unit_id = unit_id or comp.org_unit_id
    final = comp.status == CompetitionStatus.finalized
    view = "live" if final else "pub"
    ids = leaderboard.ranked(session, comp, unit_id, bracket, view)
    top = ids[:limit]
    rows = {
        a.person_id: a
        for a in session.scalars(
            select(Attempt).where(Attempt.competition_id == comp.id, Attempt.person_id.in_(top))
        )
    }
    names = dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(top))).all())
    return {
        "competition_id": comp.id,
        "scope_unit_id": unit_id,
        "bracket": bracket,
        "final": final,
        "frozen": (not final) and comp.freeze_at is not None and now >= comp.freeze_at,
        "tie_rule": "得分高者优先；同分比正确率；再比用时（服务器计时）短；再比提交早",
        "total": len(ids),
        "items": [
            {
                "rank": n,
                "person_id": pid,
                "name": names.get(pid),
                "marks": rows[pid].marks,
                "accuracy": rows[pid].accuracy_bp / 100,
                "elapsed_seconds": rows[pid].elapsed_ms / 1000,
            }
            for n, pid in enumerate(top, 1)
        ],
        "my_rank": leaderboard.rank_of(session, comp, actor.person_id, unit_id, bracket, view),
    }


def finalize(
    session: Session, comp_id: int, now: datetime | None = None, actor: Actor | None = None
) -> dict[str, Any]:
    """After the window and its grace period: grade open attempts from saved answers,
    publish results, award points by percentile (top 10% 10, top 30% 6, other finishers
    3). Idempotent. ``actor`` (a trainer of the competition's unit) is None for the
    scheduled sweep. Open attempts are closed through the sweep's claim
    (``attempts.may_close``): while a submit accepted in time still waits to be recorded,
    nothing is closed and the call is refused (attempt_being_recorded), to be retried."""
    now = now or utcnow()
    comp = get(session, comp_id)
    if actor is not None:
        require_jurisdiction(actor, _unit(session, comp.org_unit_id).path, *TRAINER)
    if now < comp.ends_at:
        raise Conflict("比武尚未结束", code="competition_not_ended")
    if comp.status == CompetitionStatus.finalized:
        return {"competition_id": comp.id, "ranked": 0, "already": True}
    closes = comp.ends_at + timedelta(seconds=attempts.get_paper(session, comp.paper_id).grace_seconds)
    if now < closes:
        wait = math.ceil((closes - now).total_seconds())
        raise Conflict(f"比武刚结束，提交宽限期还剩 {wait} 秒，请稍后再公布成绩", code="competition_in_grace")
    still_open = list(
        session.scalars(
            select(Attempt).where(
                Attempt.competition_id == comp.id, Attempt.status == AttemptStatus.in_progress
            )
        )
    )
    if not all([attempts.may_close(a) for a in still_open]):  # claim every one, then decide
        raise Conflict("还有按时提交的答卷正在记录，请稍后再公布成绩", code="attempt_being_recorded")
    for a in still_open:
        attempts.close(session, a, now)
    ids = leaderboard.ranked_sql(session, comp, comp.org_unit_id, "all", "live")
    rules = rules_at(comp.ends_at)
    n = len(ids)
    for rank, pid in enumerate(ids, 1):
        pts = rules.competition_finish_points
        for share, tier_pts in rules.competition_tiers:
            if rank <= math.ceil(share * n):
                pts = tier_pts
                break
        points.award(
            session, pid, "competition", f"comp:{comp.id}", pts, f"《{comp.title}》第 {rank} 名", now
        )
    comp.status, comp.finalized_at = CompetitionStatus.finalized, now
    session.flush()
    return {"competition_id": comp.id, "ranked": n, "already": False}


def finalize_due(session: Session, now: datetime | None = None) -> list[int]:
    """Cron: finalise every competition whose window and grace period have passed; one
    still in its grace period or with a submit waiting to be recorded waits for the next
    run. Returns the ids finalised."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(Competition.id).where(
                Competition.status == CompetitionStatus.scheduled,
                Competition.ends_at <= now - timedelta(seconds=10),
            )
        )
    )
    done = []
    for cid in due:
        try:
            finalize(session, cid, now)  # refuses before writing anything
        except Conflict as exc:
            log.info("competition %s not finalised yet: %s", cid, exc.code)
            continue
        done.append(cid)
    return done


def item_statistics(session: Session, actor: Actor, comp_id: int) -> list[dict[str, Any]]:
    """Facility and discrimination (item vs rest-of-test correlation) over first attempts;
    flags items with facility > 0.95 or < 0.2, or discrimination < 0.2.

    An item's score follows how its marks are awarded (services.quiz.grading): without
    certainty-based marking a scenario item earns one mark per right part, so its score
    is the fraction of parts right (partial credit, Moodle's facility index); with
    certainty-based marking the marks are all-or-nothing (right only when every part is
    right), so the score is 1 or 0 on the same rule. Unanswered items score 0."""
    comp = get(session, comp_id)
    require_jurisdiction(actor, _unit(session, comp.org_unit_id).path, *TRAINER)
    if comp.status != CompetitionStatus.finalized:
        raise Conflict("比武结束并公布成绩后才能查看题目分析", code="results_not_published")
    cbm = attempts.get_paper(session, comp.paper_id).certainty_marking
    rows = session.execute(
        select(
            AttemptItem.attempt_id,
            AttemptItem.question_id,
            AttemptItem.marks,
            AttemptItem.correct,
            AttemptItem.option_order,  # one list per part: an item's marks are out of len(order)
        )
        .join(Attempt, Attempt.id == AttemptItem.attempt_id)
        .where(Attempt.competition_id == comp.id, Attempt.status.in_(leaderboard.FINISHED))
    ).all()
    totals: dict[int, float] = {}
    per_q: dict[int, list[tuple[int, float]]] = {}
    for aid, qid, marks, correct, order in rows:
        s = (1.0 if correct else 0.0) if cbm else marks / len(order)
        totals[aid] = totals.get(aid, 0.0) + s
        per_q.setdefault(qid, []).append((aid, s))
    out = []
    for qid, scores in sorted(per_q.items()):
        xs = [s for _, s in scores]
        rest = [totals[a] - s for a, s in scores]
        facility = sum(xs) / len(xs)
        disc = _corr(xs, rest)
        flags = []
        if facility > 0.95:
            flags.append("过易")
        if facility < 0.2:
            flags.append("过难")
        if disc is None or disc < 0.2:
            flags.append("区分度低")
        out.append(
            {
                "question_id": qid,
                "n": len(xs),
                "facility": round(facility, 3),
                "discrimination": None if disc is None else round(disc, 3),
                "flags": flags,
            }
        )
    return out


def _corr(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)
