"""Operator view of the outbox: failed and stuck jobs with their reasons, re-queueing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import Conflict, NotFound
from jobs.maintenance import stuck_ids
from models.platform import AuditEntry, OutboxItem, OutboxStatus

STUCK_REASON = "运行超过时限仍未完成（工作进程可能已中断），等待重新派发"


def _view(item: OutboxItem, reason: str | None = None) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "queue": item.queue,
        "status": item.status.value,
        "attempts": item.attempts,
        "max_attempts": item.max_attempts,
        "reason": reason or item.last_error,
        "dedup_key": item.dedup_key,
        "payload": item.payload,
        "created_at": item.created_at.isoformat(),
        "started_at": item.started_at.isoformat() if item.started_at else None,
        "finished_at": item.finished_at.isoformat() if item.finished_at else None,
    }


def jobs_query(session: Session, status: str, now: datetime | None = None) -> Select:
    """Failed rows (``status="failed"``) or running rows past their timeout (``"stuck"``)."""
    if status == "stuck":
        return select(OutboxItem).where(OutboxItem.id.in_(stuck_ids(session, now or utcnow(), limit=10_000)))
    return select(OutboxItem).where(OutboxItem.status == OutboxStatus.failed)


def job_view(status: str) -> Callable[[OutboxItem], dict[str, Any]]:
    return lambda item: _view(item, STUCK_REASON if status == "stuck" else None)


def list_jobs(session: Session, status: str, *, limit: int = 50, now: datetime | None = None) -> list[dict]:
    """Newest first; read only."""
    rows = session.scalars(jobs_query(session, status, now).order_by(OutboxItem.id.desc()).limit(limit))
    return [job_view(status)(r) for r in rows]


def requeue(
    session: Session, item_id: int, *, actor_id: int | None = None, now: datetime | None = None
) -> dict:
    """Put a failed or stuck row back to pending with fresh attempts; audit-logged.

    Flushes; the caller commits (the reconciler or the commit's dispatch runs it).
    An operator re-queueing a send that died mid-run accepts that it may arrive twice."""
    now = now or utcnow()
    item = session.get(OutboxItem, item_id, with_for_update=True)
    if item is None:
        raise NotFound("任务不存在", code="job_not_found")
    stuck = item.status == OutboxStatus.running and item_id in stuck_ids(session, now, limit=10_000)
    if item.status != OutboxStatus.failed and not stuck:
        raise Conflict("只能重新排队失败或卡住的任务", code="job_not_requeueable")
    previous = item.last_error
    item.status, item.attempts, item.next_attempt_at = OutboxStatus.pending, 0, now
    item.started_at = item.finished_at = None
    session.add(
        AuditEntry(
            actor_id=actor_id,
            action="job.requeue",
            object_type="outbox",
            object_id=str(item.id),
            data={"kind": item.kind, "previous_error": previous},
        )
    )
    from core.outbox import PENDING_KEY

    session.info.setdefault(PENDING_KEY, []).append((item.id, item.queue, item.kind))
    session.flush()
    return _view(item)
