"""Attempts: server-kept time, shuffled options, answers withheld until
submission, per-question save, a whole-attempt submit that happens once."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import flag_modified

from core.auth import Actor
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from models.quiz import (
    AnswerEvent,
    Attempt,
    AttemptItem,
    AttemptStatus,
    Competition,
    Grading,
    Paper,
    PointEntry,
    QuestionVersion,
)
from services.quiz import bank, cache, grading, intake, points
from services.quiz.attempt_view import FINISHED, results_time, view  # noqa: F401  (re-exported)
from services.quiz.config import rules_at
from services.quiz.papers import check_plain_start, create_paper, draw, get_paper  # noqa: F401

EXPIRED_MESSAGE = "作答已截止并按已保存的答案评分，提交未被接受"


def start(
    session: Session,
    actor: Actor,
    paper_id: int,
    now: datetime | None = None,
    competition: Competition | None = None,
    bracket: int = 1,
) -> dict[str, Any]:
    """Start (or resume) an attempt: draws questions, shuffles options, fixes the server
    deadline. Resuming the open attempt of the same kind (plain, or this competition)
    returns it unchanged. Writes Attempt + items."""
    now = now or utcnow()
    paper = get_paper(session, paper_id)
    comp_id = competition.id if competition else None
    if competition is None:
        check_plain_start(session, actor, paper)
    mine = list(
        session.scalars(
            select(Attempt)
            .where(Attempt.paper_id == paper.id, Attempt.person_id == actor.person_id)
            .order_by(Attempt.number)
        )
    )
    for a in mine:
        if a.competition_id != comp_id:
            continue  # another kind of attempt on this paper is never handed out as this one
        if a.status == AttemptStatus.in_progress:
            if now <= a.deadline_at + timedelta(seconds=paper.grace_seconds):
                content = bank.content_of(session, [i.version_id for i in a.items])
                intake.warm_after_commit(session, a, content)
                return view(session, a, now, content)
            if not may_close(a):
                raise Conflict("上次作答的提交正在记录，请稍后再试", code="attempt_being_recorded")
            close(session, a, now)
    if competition is None and sum(1 for a in mine if a.competition_id is None) >= paper.attempts_allowed:
        raise Conflict(f"本试卷最多可作答 {paper.attempts_allowed} 次", code="attempts_exhausted")
    rng = random.Random(secrets.randbits(64))
    qids = draw(session, paper, rng)
    deadline = now + timedelta(seconds=paper.duration_seconds)
    if competition is not None:
        deadline = min(deadline, competition.ends_at)
    attempt = Attempt(
        paper_id=paper.id,
        person_id=actor.person_id,
        competition_id=comp_id,
        number=max((a.number for a in mine), default=0) + 1,
        bracket=bracket,
        started_at=now,
        deadline_at=deadline,
    )
    current = bank.current_versions(session, qids)  # the whole paper in one query
    attempt.items = [
        AttemptItem(
            position=pos,
            question_id=qid,
            version_id=current[qid][1].id,
            option_order=[rng.sample(keys, len(keys)) for keys in bank.options_per_part(current[qid][1])],
        )
        for pos, qid in enumerate(qids, 1)
    ]
    session.add(attempt)
    session.flush()  # the attempt, then its items in one batched INSERT
    content = {v.id: (q, v) for q, v in current.values()}
    intake.warm_after_commit(session, attempt, content)
    return view(session, attempt, now, content)


def own_attempt(session: Session, actor: Actor, attempt_id: int, lock: bool = False) -> Attempt:
    stmt = select(Attempt).where(Attempt.id == attempt_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    attempt = session.scalar(stmt)
    if attempt is None:
        raise NotFound("作答记录不存在", code="attempt_not_found")
    if attempt.person_id != actor.person_id:
        raise Forbidden("这不是您的作答", code="not_your_attempt")
    return attempt


def _open_for_answers(session: Session, attempt: Attempt, now: datetime) -> Paper:
    if attempt.status == AttemptStatus.expired:
        raise Conflict(EXPIRED_MESSAGE, code="attempt_deadline_passed")
    if attempt.status != AttemptStatus.in_progress:
        raise Conflict("本次作答已提交，不能重复提交", code="attempt_already_submitted")
    paper = get_paper(session, attempt.paper_id)
    if now > attempt.deadline_at + timedelta(seconds=paper.grace_seconds):
        raise Conflict("已超过作答截止时间，提交未被接受", code="attempt_deadline_passed")
    return paper


def save(
    session: Session,
    actor: Actor,
    attempt_id: int,
    position: int,
    choice: str | list[str],
    certainty: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Keep one answer (no scoring yet); may be changed until submission or deadline."""
    now = now or utcnow()
    cache.rate_limit(actor.person_id, "answer", rules_at(now).answers_per_minute, now.timestamp())
    attempt = own_attempt(session, actor, attempt_id, lock=True)
    _open_for_answers(session, attempt, now)
    _put(attempt, position, choice, certainty, now)
    session.flush()
    return {"attempt_id": attempt.id, "position": position, "saved_at": now.isoformat()}


def _put(attempt: Attempt, position: int, choice: str | list[str], certainty: int | None, now: datetime):
    item = next((i for i in attempt.items if i.position == position), None)
    if item is None:
        raise ValidationFailed(fields={"position": f"第 {position} 题不存在"})
    labels = [[chr(65 + n) for n in range(len(keys))] for keys in item.option_order]
    item.response = grading.parse_choice(choice, labels)
    if certainty is not None and certainty not in grading.CBM:
        raise ValidationFailed(fields={"certainty": "应为 1、2 或 3"})
    item.certainty = certainty
    item.saved_at = now


def submit(
    session: Session,
    actor: Actor,
    attempt_id: int,
    answers: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Submit the whole attempt once: apply ``answers``, grade, record answer events,
    award test points (or update the competition leaderboard after commit).

    A second submit is refused (409 attempt_already_submitted); a replay with the same
    Idempotency-Key gets the first response from the API layer. After deadline + grace
    the submission is refused and nothing is written.
    """
    now = now or utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # ranks compare in ms
    attempt = own_attempt(session, actor, attempt_id, lock=True)
    paper = _open_for_answers(session, attempt, now)
    for a in answers or []:
        _put(attempt, a["position"], a["choice"], a.get("certainty"), now)
    _finish(session, attempt, now, AttemptStatus.submitted, paper)
    return view(session, attempt, now)


def close(session: Session, attempt: Attempt, now: datetime) -> None:
    """Grade an overdue open attempt from its saved answers (status expired)."""
    at = attempt.deadline_at
    _finish(session, attempt, at.replace(microsecond=at.microsecond // 1000 * 1000), AttemptStatus.expired)


def close_overdue(session: Session, now: datetime | None = None) -> int:
    """Sweep: grade every attempt past deadline + grace. Idempotent."""
    now = now or utcnow()
    n = 0
    for attempt in session.scalars(
        select(Attempt).where(Attempt.status == AttemptStatus.in_progress, Attempt.deadline_at < now)
    ):
        paper = get_paper(session, attempt.paper_id)
        if now > attempt.deadline_at + timedelta(seconds=paper.grace_seconds) and may_close(attempt):
            close(session, attempt, now)
            n += 1
    return n


def may_close(attempt: Attempt) -> bool:
    """An overdue attempt may be closed unless a write-behind submit accepted in time is
    still waiting to be recorded (services.quiz.intake); closing also refuses later ones."""
    app = cache.app()
    if not intake.enabled(app):
        return True
    return intake.claim_overdue(app.extensions["zhizhi"].redis, attempt.id)


def _finish(
    session: Session,
    attempt: Attempt,
    at: datetime,
    status: AttemptStatus,
    paper: Paper | None = None,
    versions: dict[int, QuestionVersion] | None = None,
) -> None:
    """Grade and close ``attempt``; ``paper`` and ``versions`` may be passed preloaded
    (the write-behind recording does, for a whole batch)."""
    paper = paper or get_paper(session, attempt.paper_id)
    if versions is None:
        with session.no_autoflush:  # one UPDATE per item (batched), not one for save and one for grade
            versions = {
                v.id: v
                for v in session.scalars(
                    select(QuestionVersion).where(
                        QuestionVersion.id.in_([i.version_id for i in attempt.items])
                    )
                )
            }
    marks = max_marks = 0.0
    answered = correct = 0
    for item in attempt.items:
        v = versions[item.version_id]
        keys = bank.answer_keys(v)
        max_marks += grading.max_marks(keys, paper.certainty_marking)
        flag_modified(item, "marks")  # same column set on every row lets the UPDATEs batch
        graded = grading.grade_item(
            item.response, item.option_order, keys, item.certainty, paper.certainty_marking
        )
        if graded is None:
            item.correct, item.marks = False, 0.0
            continue
        frac, ok, item.marks = graded
        item.correct = ok
        answered += 1
        correct += ok
        session.add(
            AnswerEvent(
                person_id=attempt.person_id,
                question_id=item.question_id,
                version_id=v.id,
                correct=ok,
                score=frac,
                source="attempt",
                source_id=attempt.id * 1000 + item.position,
                answered_at=at,
            )
        )
        marks += item.marks
    attempt.status = status
    attempt.submitted_at = at
    attempt.marks, attempt.max_marks = marks, max_marks
    attempt.answered, attempt.correct = answered, correct
    attempt.accuracy_bp = correct * 10000 // answered if answered else 0
    attempt.elapsed_ms = int((min(at, attempt.deadline_at) - attempt.started_at).total_seconds() * 1000)
    session.flush()
    if attempt.competition_id is None:
        _award_test(session, attempt, paper, at)
    else:
        from services.quiz import leaderboard

        leaderboard.on_result(session, attempt)


def _award_test(session: Session, attempt: Attempt, paper: Paper, now: datetime) -> None:
    """Points follow the paper's graded result (first/highest/last); a better later result
    adds the difference as a new entry. Capped per week."""
    done = list(
        session.scalars(
            select(Attempt)
            .where(
                Attempt.paper_id == paper.id,
                Attempt.person_id == attempt.person_id,
                Attempt.competition_id.is_(None),
                Attempt.status.in_(FINISHED),
            )
            .order_by(Attempt.number)
            .options(lazyload(Attempt.items))
        )
    )
    graded = graded_attempt(done, paper.grading)
    if graded is None or graded.max_marks <= 0:
        return
    target = round(rules_at(now).test_points_max * max(graded.marks, 0) / graded.max_marks)
    given = session.scalar(
        select(func.coalesce(func.sum(PointEntry.delta), 0)).where(
            PointEntry.person_id == attempt.person_id,
            PointEntry.source_type == "test",
            PointEntry.source_id.like(f"paper:{paper.id}:%"),
        )
    )
    if target > int(given or 0):
        points.award(
            session,
            attempt.person_id,
            "test",
            f"paper:{paper.id}:a{attempt.id}",
            target - int(given or 0),
            f"完成测试《{paper.title}》",
            now,
        )


def graded_attempt(done: list[Attempt], method: Grading) -> Attempt | None:
    if not done:
        return None
    if method == Grading.first:
        return done[0]
    if method == Grading.last:
        return done[-1]
    return max(done, key=lambda a: (a.marks, -a.number))
