"""Audit entries of trainer actions in the quiz domain (the shared ``audit_log`` table,
read by admins at ``GET /api/v1/admin/audit``): point adjustments and question bank
changes, with who, what and the values before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models.platform import AuditEntry
from models.quiz import Question, QuestionVersion

#: what an edit may change, as (audit key, the value read from question and version)
_FIELDS = {
    "stem": lambda q, v, t: v.stem,
    "options": lambda q, v, t: v.options,
    "answer": lambda q, v, t: v.answer,
    "parts": lambda q, v, t: v.parts,
    "explanation": lambda q, v, t: v.explanation,
    "difficulty": lambda q, v, t: q.difficulty,
    "topics": lambda q, v, t: sorted(t),
    "source": lambda q, v, t: q.source,
}


def record(
    session: Session,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: int,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Add one audit row to the session: it commits with the change it records, or not at all."""
    session.add(
        AuditEntry(
            actor_id=actor_id,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            data=data,
            created_at=now,
        )
    )


def question_state(q: Question, v: QuestionVersion, topics: list[str]) -> dict[str, Any]:
    """The auditable content of a question at one version (taken before an edit)."""
    return {name: read(q, v, topics) for name, read in _FIELDS.items()}


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"before": ..., "after": ...}}`` for the fields that differ."""
    return {k: {"before": before[k], "after": after[k]} for k in before if before[k] != after[k]}
