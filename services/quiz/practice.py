"""Daily practice (每日一练): per-worker selection, one question at a time or as a set.

Selection: questions due for spaced review (FSRS on what the worker got wrong) first,
then unseen questions from the worker's weakest topics, then anything not practised in
the last 7 days. Practice is unlimited; the points are capped (see points.py).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from fsrs import Card, Rating, Scheduler
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.auth import Actor, require_role
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from models.quiz import (
    AnswerEvent,
    PracticeItem,
    Question,
    QuestionStatus,
    QuestionTopic,
    ReviewCard,
    Topic,
)
from services.quiz import ability, bank, cache, grading, points
from services.quiz.config import local_day, rules_at

LEARNER_ROLES = ("grid_worker", "trainer")


def _scheduler() -> Scheduler:
    # Daily granularity: no intraday learning steps, deterministic intervals.
    return Scheduler(learning_steps=(), relearning_steps=(), enable_fuzzing=False)


def start_daily(session: Session, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    """Today's set for the actor (creates it on first call; later calls return the same
    items, so the bot and the form share one set). Writes PracticeItem rows."""
    require_role(actor, *LEARNER_ROLES)
    now = now or utcnow()
    day = local_day(now)
    items = _today(session, actor.person_id, day)
    if not items:
        _add_items(session, actor.person_id, day, select_questions(session, actor.person_id, now), 0, now)
        items = _today(session, actor.person_id, day)
    return {
        "day": day.isoformat(),
        "items": [item_view(session, i) for i in items],
        "caps": points.caps_today(session, actor.person_id, now),
    }


def more(session: Session, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    """再来一组: once every item of the day is answered, another set of today's size
    (same selection, never a question already practised today). Practice is unlimited;
    correct answers still count toward the daily points cap. Returns the new items."""
    require_role(actor, *LEARNER_ROLES)
    now = now or utcnow()
    day = local_day(now)
    items = _today(session, actor.person_id, day)
    pending = sum(1 for i in items if i.answered_at is None)
    if not items or pending:
        why = f"今日还有 {pending} 道题未作答" if pending else "今日练习还没有开始"
        raise Conflict(f"{why}，请先完成再来一组", code="practice_pending", details={"remaining": pending})
    size = rules_at(now).daily_size
    round_no = len(items) // size + 1
    chosen = select_questions(
        session, actor.person_id, now, exclude={i.question_id for i in items}, salt=str(round_no)
    )
    if not chosen:
        raise Conflict("题库中暂时没有更多可练习的题目，明天再来吧", code="practice_exhausted")
    start = max(i.position for i in items)
    _add_items(session, actor.person_id, day, chosen, start, now)
    fresh = [i for i in _today(session, actor.person_id, day) if i.position > start]
    return {
        "day": day.isoformat(),
        "round": round_no,
        "items": [item_view(session, i) for i in fresh],
        "caps": points.caps_today(session, actor.person_id, now),
    }


def _add_items(
    session: Session, person_id: int, day: date, chosen: list[tuple[Question, str]], after: int, now: datetime
) -> None:
    current = bank.current_versions(session, [q.id for q, _ in chosen])
    try:
        with session.begin_nested():
            for pos, (q, reason) in enumerate(chosen, after + 1):
                v = current[q.id][1]
                session.add(
                    PracticeItem(
                        person_id=person_id,
                        day=day,
                        position=pos,
                        question_id=q.id,
                        version_id=v.id,
                        reason=reason,
                        created_at=now,
                    )
                )
    except IntegrityError:
        pass  # a concurrent call built the same set


def next_question(session: Session, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    """For chat, one question at a time: today's first unanswered item (creating the set
    if needed), with progress; ``item`` is None once all are answered. Same side effects
    as ``start_daily``."""
    today = start_daily(session, actor, now)
    items = today["items"]
    pending = [i for i in items if not i["answered"]]
    done = len(items) - len(pending)
    return {
        "day": today["day"],
        "item": pending[0] if pending else None,
        "progress": f"{done}/{len(items)}",
        "correct": sum(1 for i in items if i.get("result", {}).get("correct")),
        "caps": today["caps"],
    }


def _today(session: Session, person_id: int, day) -> list[PracticeItem]:
    return list(
        session.scalars(
            select(PracticeItem)
            .where(PracticeItem.person_id == person_id, PracticeItem.day == day)
            .order_by(PracticeItem.position)
        )
    )


def select_questions(
    session: Session, person_id: int, now: datetime, exclude: set[int] | None = None, salt: str = ""
) -> list[tuple[Question, str]]:
    """Up to N (question, reason) for today; reason is due | weak | fresh. ``exclude``:
    questions not to offer (already practised today, for another set)."""
    rules = rules_at(now)
    size = rules.daily_size
    rng = random.Random(f"{person_id}:{local_day(now)}{salt}")
    active = {
        q.id: q
        for q in session.scalars(select(Question).where(Question.status == QuestionStatus.active))
        if q.id not in (exclude or ())
    }
    picked: dict[int, str] = {}
    due = session.scalars(
        select(ReviewCard.question_id)
        .where(ReviewCard.person_id == person_id, ReviewCard.due_at <= now)
        .order_by(ReviewCard.due_at)
    )
    for qid in due:
        if qid in active and len(picked) < size:
            picked[qid] = "due"
    since = local_day(now) - timedelta(days=rules.no_repeat_days)
    recent = set(
        session.scalars(
            select(PracticeItem.question_id).where(
                PracticeItem.person_id == person_id, PracticeItem.day >= since
            )
        )
    )
    seen = set(session.scalars(select(AnswerEvent.question_id).where(AnswerEvent.person_id == person_id)))
    by_topic = _questions_by_topic(session)
    mastery = ability.mastery_by_person(session, [person_id]).get(person_id, {})
    order = sorted(by_topic, key=lambda t: (mastery.get(t, {}).get("mastery", ability.NEUTRAL), rng.random()))
    pools = {
        t: [q for q in sorted(by_topic[t]) if q in active and q not in seen and q not in recent]
        for t in order
    }
    for pool in pools.values():
        rng.shuffle(pool)
    while len(picked) < size and any(pools.values()):
        for t in order:
            while pools[t] and pools[t][-1] in picked:
                pools[t].pop()
            if pools[t] and len(picked) < size:
                picked[pools[t].pop()] = "weak"
    rest = [qid for qid in sorted(active) if qid not in picked and qid not in recent]
    rng.shuffle(rest)
    for qid in rest[: max(0, size - len(picked))]:
        picked[qid] = "fresh"
    return [(active[qid], reason) for qid, reason in picked.items()]


def _questions_by_topic(session: Session) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for name, qid in session.execute(
        select(Topic.name, QuestionTopic.question_id).join(Topic, Topic.id == QuestionTopic.topic_id)
    ):
        out.setdefault(name, []).append(qid)
    return out


def item_view(session: Session, item: PracticeItem) -> dict[str, Any]:
    """The item as the worker sees it; the answer only once answered."""
    q = session.get(Question, item.question_id)
    v = session.get(bank.QuestionVersion, item.version_id)
    assert q is not None and v is not None
    out = {
        "item_id": item.id,
        "position": item.position,
        "reason": item.reason,
        "answered": item.answered_at is not None,
    }
    out["question"] = bank.public_view(q, v)
    if item.answered_at is not None:
        out["result"] = {
            "correct": item.correct,
            "your_choice": item.choice,
            "correct_answer": "/".join(bank.answer_keys(v)),
            "explanation": v.explanation,
            "points_awarded": item.points_awarded,
            "points_note": item.points_note,
        }
    return out


def answer(
    session: Session,
    actor: Actor,
    practice_item_id: int,
    choice: str | list[str],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Grade one practice answer; record it (answer event, FSRS card) and award capped points.

    Returns correctness, the correct answer, the explanation, points awarded and, when the
    cap left no room, the reason. Answering the same item twice is refused (409).
    """
    now = now or utcnow()
    cache.rate_limit(actor.person_id, "answer", rules_at(now).answers_per_minute, now.timestamp())
    item = session.get(PracticeItem, practice_item_id)
    if item is None:
        raise NotFound("练习题不存在", code="practice_item_not_found")
    if item.person_id != actor.person_id:
        raise Forbidden("这不是您的练习题", code="not_your_item")
    if item.answered_at is not None:
        raise Conflict("这道题已经作答", code="already_answered")
    q = session.get(Question, item.question_id)
    v = session.get(bank.QuestionVersion, item.version_id)
    assert q is not None and v is not None
    if q.status == QuestionStatus.retired:
        raise Conflict("该题已停用，请作答下一题", code="question_retired")
    parts = grading.parse_choice(choice, bank.options_per_part(v))
    score, correct = grading.score_parts(parts, bank.answer_keys(v))
    item.choice, item.correct, item.answered_at = "/".join(parts), correct, now
    session.add(
        AnswerEvent(
            person_id=actor.person_id,
            question_id=q.id,
            version_id=v.id,
            correct=correct,
            score=score,
            source="practice",
            source_id=item.id,
            answered_at=now,
        )
    )
    _review(session, actor.person_id, q.id, correct, now)
    if correct:
        got = points.award(
            session,
            actor.person_id,
            "practice",
            f"item:{item.id}",
            rules_at(now).practice_per_correct,
            "每日一练答对",
            now,
        )
        item.points_awarded, item.points_note = got.granted, got.note
    session.flush()
    view = item_view(session, item)
    view["caps"] = points.caps_today(session, actor.person_id, now)
    return view


def answer_set(
    session: Session, actor: Actor, answers: list[tuple[int, str | list[str]]], now: datetime | None = None
) -> list[dict[str, Any]]:
    """The form path: several answers at once, in order (each as ``answer``). The whole
    set is checked first: an unknown, foreign, repeated or already answered item is
    refused naming it (``details``: its index in the set, item id, position); a bad
    choice names its field (``answers.<index>.choice``). Nothing is written then."""
    seen: set[int] = set()
    for n, (item_id, _choice) in enumerate(answers):
        item = session.get(PracticeItem, item_id)
        where = {"index": n, "item_id": item_id}
        if item is None:
            raise NotFound(f"所交第 {n + 1} 项：练习题不存在", code="practice_item_not_found", details=where)
        if item.person_id != actor.person_id:
            raise Forbidden(f"所交第 {n + 1} 项不是您的练习题", code="not_your_item", details=where)
        where["position"] = item.position
        if item.answered_at is not None or item_id in seen:
            raise Conflict(
                f"第 {item.position} 题已经作答（所交第 {n + 1} 项），请去掉后重新提交",
                code="already_answered",
                details=where,
            )
        seen.add(item_id)
    out = []
    for n, (item_id, choice) in enumerate(answers):
        try:
            out.append(answer(session, actor, item_id, choice, now))
        except ValidationFailed as exc:
            raise ValidationFailed(
                exc.message,
                fields={f"answers.{n}.{k}": v for k, v in (exc.fields or {"choice": exc.message}).items()},
            ) from exc
    return out


def _review(session: Session, person_id: int, question_id: int, correct: bool, now: datetime) -> None:
    """Spaced review: a wrong answer creates/lapses the FSRS card; a right one advances it."""
    row = session.scalar(
        select(ReviewCard).where(ReviewCard.person_id == person_id, ReviewCard.question_id == question_id)
    )
    if row is None and correct:
        return
    card = Card.from_dict(row.card) if row is not None else Card()
    card, _log = _scheduler().review_card(card, Rating.Good if correct else Rating.Again, now)
    if row is None:
        row = ReviewCard(person_id=person_id, question_id=question_id, card={}, due_at=card.due)
        session.add(row)
    row.card, row.due_at, row.updated_at = card.to_dict(), card.due, now
