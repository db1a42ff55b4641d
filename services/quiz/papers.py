"""Papers: fixed question lists or blueprints (n questions per topic × difficulty)."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Actor, require_jurisdiction, require_role
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from models.identity import OrgUnit, Person
from models.quiz import Competition, Grading, Paper, PaperMode, Question, QuestionStatus, QuestionTopic, Topic
from services.quiz import bank
from services.quiz.config import rules_at

STATUS_WORDS = {QuestionStatus.draft: "草稿", QuestionStatus.retired: "已停用"}


def create_paper(session: Session, actor: Actor, spec: dict[str, Any]) -> Paper:
    """Trainer creates a fixed paper (question ids) or a blueprint (count per topic ×
    difficulty); checks every question exists and the bank can fill the blueprint. The
    paper is for the workers of ``org_unit_id`` (default: the trainer's jurisdiction)."""
    require_role(actor, *bank.TRAINER_ROLES)
    unit_id = spec.get("org_unit_id") or _home_unit(actor)
    if spec.get("org_unit_id"):
        unit = session.get(OrgUnit, unit_id)
        if unit is None:
            raise ValidationFailed(fields={"org_unit_id": "组织不存在"})
        require_jurisdiction(actor, unit.path, *bank.TRAINER_ROLES)
    paper = Paper(
        title=spec["title"],
        mode=PaperMode(spec["mode"]),
        question_ids=list(spec.get("question_ids") or []),
        blueprint=[dict(b) for b in spec.get("blueprint") or []],
        duration_seconds=spec.get("duration_seconds", 1800),
        grace_seconds=spec.get("grace_seconds", rules_at(utcnow()).default_grace_seconds),
        attempts_allowed=spec.get("attempts_allowed", 1),
        grading=Grading(spec.get("grading", "highest")),
        certainty_marking=spec.get("certainty_marking", False),
        org_unit_id=unit_id,
        created_by_id=actor.person_id,
    )
    if paper.mode == PaperMode.fixed:
        check_fixed_questions(session, paper.question_ids)
    else:
        if not paper.blueprint:
            raise ValidationFailed(fields={"blueprint": "抽题规则不能为空"})
        for i, rule in enumerate(paper.blueprint):
            have = len(_pool(session, rule))
            if have < rule["count"]:
                raise ValidationFailed(fields={f"blueprint.{i}": f"题库中只有 {have} 道符合条件的题"})
    session.add(paper)
    session.flush()
    return paper


def check_fixed_questions(session: Session, question_ids: list[int]) -> None:
    """A fixed paper's questions must exist and be active (not a draft, not retired):
    422 naming ``question_ids`` and the offending ids (``details``), before anything is
    written. Every path that sets a fixed paper's questions calls this."""
    if not question_ids:
        raise ValidationFailed(fields={"question_ids": "固定试卷至少需要一道题"})
    status = dict(
        session.execute(select(Question.id, Question.status).where(Question.id.in_(question_ids))).all()
    )
    missing = [q for q in dict.fromkeys(question_ids) if q not in status]
    if missing:
        raise ValidationFailed(
            fields={"question_ids": f"题目不存在：{missing}"}, details={"missing": missing}
        )
    inactive = [q for q in dict.fromkeys(question_ids) if status[q] != QuestionStatus.active]
    if inactive:
        words = "、".join(f"{q}（{STATUS_WORDS[status[q]]}）" for q in inactive)
        raise ValidationFailed(
            f"试卷不能包含未启用的题目：{words}",
            code="question_not_active",
            fields={"question_ids": f"题目未启用（草稿或已停用）：{inactive}"},
            details={"inactive": inactive},
        )


def _home_unit(actor: Actor) -> int | None:
    """The unit a trainer governs (the widest of their trainer grants), else their own;
    an admin's papers are for everyone."""
    if actor.has_role("admin"):
        return None
    grants = [g for g in actor.grants if g.role in bank.TRAINER_ROLES and g.org_unit_id is not None]
    if grants:
        return min(grants, key=lambda g: len(g.org_path or "")).org_unit_id
    return actor.org_unit_id


def check_plain_start(session: Session, actor: Actor, paper: Paper) -> None:
    """A plain (non-competition) attempt: refused on a paper a competition uses (it would
    reveal the questions, and after submitting the answers, before the window) and for
    workers outside the paper's unit (trainers with jurisdiction over it may preview)."""
    if session.scalar(select(Competition.id).where(Competition.paper_id == paper.id).limit(1)):
        raise Conflict("该试卷为比武试卷，请在比武时间内从比武入口参加", code="competition_paper")
    if paper.org_unit_id is None:
        return
    unit_path = session.scalar(select(OrgUnit.path).where(OrgUnit.id == paper.org_unit_id))
    mine = session.scalar(
        select(OrgUnit.path)
        .join(Person, Person.org_unit_id == OrgUnit.id)
        .where(Person.id == actor.person_id)
    )
    inside = unit_path is not None and mine is not None and mine.startswith(unit_path)
    if not inside and not actor.covers(unit_path, *bank.TRAINER_ROLES):
        raise Forbidden("该试卷不面向您所在的组织", code="paper_out_of_scope")


def _pool(session: Session, rule: dict[str, Any]) -> list[int]:
    stmt = (
        select(Question.id)
        .join(QuestionTopic, QuestionTopic.question_id == Question.id)
        .join(Topic, Topic.id == QuestionTopic.topic_id)
        .where(Topic.name == rule["topic"], Question.status == QuestionStatus.active)
        .order_by(Question.id)
    )
    if rule.get("difficulty"):
        stmt = stmt.where(Question.difficulty == rule["difficulty"])
    return list(dict.fromkeys(session.scalars(stmt)))


def get_paper(session: Session, paper_id: int) -> Paper:
    paper = session.get(Paper, paper_id)
    if paper is None:
        raise NotFound("试卷不存在", code="paper_not_found")
    return paper


def draw(session: Session, paper: Paper, rng: random.Random) -> list[int]:
    if paper.mode == PaperMode.fixed:
        active = set(
            session.scalars(
                select(Question.id).where(
                    Question.id.in_(paper.question_ids), Question.status == QuestionStatus.active
                )
            )
        )
        return [q for q in paper.question_ids if q in active]
    chosen: list[int] = []
    for rule in paper.blueprint:
        pool = [q for q in _pool(session, rule) if q not in chosen]
        if len(pool) < rule["count"]:
            raise Conflict("题库题目不足，无法按规则组卷", code="blueprint_short")
        chosen.extend(rng.sample(pool, rule["count"]))
    return chosen
