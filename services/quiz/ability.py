"""Ability per worker and topic: an Elo-style (1-parameter logistic) estimate updated
answer by answer, so recent answers weigh most (each update moves the estimate by a fixed
step; old evidence decays geometrically). Mastery is the predicted chance of answering a
medium-difficulty question correctly, 0..100."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.quiz import AnswerEvent, Question, QuestionTopic, Topic

K = 0.4  # step size: larger = faster forgetting of old answers
NEUTRAL = 50.0  # mastery shown as unknown


def _p(theta: float, b: float) -> float:
    return 1.0 / (1.0 + math.exp(-(theta - b)))


def item_location(difficulty: int) -> float:
    return (difficulty - 3) * 0.6


def mastery_by_person(session: Session, person_ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
    """{person_id: {topic: {"mastery": 0..100, "answers": n, "correct": c}}} from every answer."""
    stmt = (
        select(AnswerEvent.person_id, AnswerEvent.score, Question.difficulty, Topic.name)
        .join(Question, Question.id == AnswerEvent.question_id)
        .join(QuestionTopic, QuestionTopic.question_id == AnswerEvent.question_id)
        .join(Topic, Topic.id == QuestionTopic.topic_id)
        .order_by(AnswerEvent.answered_at, AnswerEvent.id)
    )
    if person_ids is not None:
        stmt = stmt.where(AnswerEvent.person_id.in_(person_ids))
    theta: dict[tuple[int, str], float] = defaultdict(float)
    counts: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for pid, score, diff, topic in session.execute(stmt):
        key = (pid, topic)
        b = item_location(diff)
        theta[key] += K * (float(score) - _p(theta[key], b))
        counts[key][0] += 1
        counts[key][1] += float(score)
    out: dict[int, dict[str, Any]] = defaultdict(dict)
    for (pid, topic), th in theta.items():
        n, c = counts[(pid, topic)]
        out[pid][topic] = {"mastery": round(100 * _p(th, 0.0), 1), "answers": int(n), "correct": round(c, 1)}
    return out


def overall(topics: dict[str, Any]) -> float | None:
    """Answer-weighted mean mastery across topics (None with no answers)."""
    n = sum(t["answers"] for t in topics.values())
    if not n:
        return None
    return round(sum(t["mastery"] * t["answers"] for t in topics.values()) / n, 1)
