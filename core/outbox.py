"""Outbox: side effects are rows committed with the business change, run after commit.

``add`` is what services call. After the edge commits, ``dispatch`` enqueues the new
rows on RQ with deterministic job ids (``outbox-<id>``), or runs them inline when there
is no Redis. The reconciler (``jobs.maintenance``) re-enqueues rows that are due or
stuck, so a lost enqueue only delays work; it never loses it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db import utcnow

PENDING_KEY = "zhizhi_outbox_new"


def add(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    dedup_key: str | None = None,
    run_at: datetime | None = None,
) -> int | None:
    """Add a side effect; returns its id, or None if ``dedup_key`` was already taken.

    The row joins the caller's transaction; it is dispatched only after that commits.
    """
    from jobs.registry import spec_for
    from models.platform import OutboxItem, OutboxStatus

    spec = spec_for(kind)
    values = {
        "kind": kind,
        "queue": spec.queue,
        "payload": payload,
        "dedup_key": dedup_key,
        "status": OutboxStatus.pending.value,
        "attempts": 0,
        "max_attempts": spec.max_attempts,
        "next_attempt_at": run_at or utcnow(),
        "created_at": utcnow(),
    }
    if dedup_key is None:
        item = OutboxItem(**values)
        session.add(item)
        session.flush()
        item_id = item.id
    else:
        dialect = session.get_bind().dialect.name
        ins = (postgresql if dialect == "postgresql" else sqlite).insert(OutboxItem.__table__)
        stmt = ins.values(**values).on_conflict_do_nothing(index_elements=["dedup_key"])
        item_id = session.execute(stmt.returning(OutboxItem.__table__.c.id)).scalar()
        if item_id is None:
            return None
    if run_at is None or run_at <= utcnow():
        session.info.setdefault(PENDING_KEY, []).append((item_id, spec.queue, kind))
    return item_id


def take_new(session: Session) -> list[tuple[int, str, str]]:
    """(id, queue, kind) of rows added in this unit of work; clears the list."""
    return session.info.pop(PENDING_KEY, [])


def due_ids(session: Session, now: datetime, limit: int = 500) -> list[int]:
    """Pending rows whose time has come (uses ``ix_outbox_status_next``)."""
    from models.platform import OutboxItem, OutboxStatus

    stmt = (
        select(OutboxItem.id)
        .where(OutboxItem.status == OutboxStatus.pending, OutboxItem.next_attempt_at <= now)
        .order_by(OutboxItem.next_attempt_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))
