"""How a worker sees an attempt: questions shuffled and relabelled, answers withheld
until it is finished, and for a competition until the end of the window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from models.quiz import Attempt, AttemptStatus, Competition
from services.quiz import bank, grading
from services.quiz.papers import get_paper

FINISHED = (AttemptStatus.submitted, AttemptStatus.expired)


def view(
    session: Session, attempt: Attempt, now: datetime, content: bank.Content | None = None
) -> dict[str, Any]:
    """The attempt as its worker sees it. Answers and explanations appear only once the
    attempt is finished; before that, options are shown shuffled and relabelled. For a
    competition, per-question results wait for the end of the window (``results_at``;
    the worker's own totals are shown, as on the leaderboard). ``content`` (questions by
    version id, as ``bank.content_of`` returns) may be passed preloaded."""
    done = attempt.status in FINISHED
    results_at = None
    if attempt.competition_id is not None:
        results_at = results_time(session, attempt)
    shown = done and (results_at is None or now >= results_at)
    if content is None:
        content = bank.content_of(session, [i.version_id for i in attempt.items])
    items = []
    for item in attempt.items:
        q, v = content[item.version_id]
        entry = {
            "position": item.position,
            "question": bank.public_view(q, v, item.option_order),
            "response": item.response,
            "certainty": item.certainty,
        }
        if shown:
            entry["result"] = {
                "correct": item.correct,
                "marks": item.marks,
                "correct_answer": grading.relabel(bank.answer_keys(v), item.option_order),
                "explanation": v.explanation,
            }
        items.append(entry)
    out = {
        "attempt_id": attempt.id,
        "paper_id": attempt.paper_id,
        "competition_id": attempt.competition_id,
        "status": str(attempt.status),
        "started_at": attempt.started_at.isoformat(),
        "deadline_at": attempt.deadline_at.isoformat(),
        "server_now": now.isoformat(),
        "seconds_left": max(0, int((attempt.deadline_at - now).total_seconds())),
        "items": items,
    }
    if done:
        out["summary"] = {
            "marks": attempt.marks,
            "max_marks": attempt.max_marks,
            "answered": attempt.answered,
            "correct": attempt.correct,
            "elapsed_ms": attempt.elapsed_ms,
        }
    if results_at is not None:
        out["results_at"] = results_at.isoformat()
    return out


def results_time(session: Session, attempt: Attempt) -> datetime:
    """When a competition attempt's per-question results are shown: the end of the window
    plus the paper's grace (the last moment anyone's submit can still be accepted)."""
    comp = session.get(Competition, attempt.competition_id)
    paper = get_paper(session, attempt.paper_id)
    assert comp is not None
    return comp.ends_at + timedelta(seconds=paper.grace_seconds)
