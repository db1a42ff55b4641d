"""Outbox reconciler: re-enqueue rows that are due, and rows stuck past their timeout."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select

from core.db import utcnow
from core.outbox import due_ids

log = logging.getLogger("zhizhi.jobs")


def stuck_ids(session, now: datetime, limit: int = 500) -> list[int]:
    """Running rows whose worker must have died (started longer ago than their timeout)."""
    from jobs.registry import all_specs
    from models.platform import OutboxItem, OutboxStatus

    specs = all_specs()
    shortest = min((s.timeout for s in specs.values()), default=60)
    rows = session.execute(
        select(OutboxItem.id, OutboxItem.kind, OutboxItem.started_at)
        .where(
            OutboxItem.status == OutboxStatus.running,
            OutboxItem.started_at < now - timedelta(seconds=shortest),
        )
        .limit(limit)
    ).all()
    out = []
    for item_id, kind, started_at in rows:
        timeout = specs[kind].timeout if kind in specs else shortest
        if started_at is None or started_at < now - timedelta(seconds=timeout):
            out.append(item_id)
    return out


def reconcile(app: Flask, now: datetime | None = None) -> dict[str, int]:
    """Dispatch pending rows that are due and stuck running rows. Safe to run anywhere,
    any number of times: the runner's claim makes a second delivery a no-op."""
    from models.platform import OutboxItem

    ext = app.extensions["zhizhi"]
    now = now or utcnow()
    with ext.db.session() as s:
        due = due_ids(s, now)
        stuck = stuck_ids(s, now)
        rows = s.execute(
            select(OutboxItem.id, OutboxItem.queue, OutboxItem.kind).where(OutboxItem.id.in_(due + stuck))
        ).all()
    from jobs.dispatch import dispatch

    dispatch(app, [tuple(r) for r in rows])
    if due or stuck:
        log.info("reconciler: %d due, %d stuck", len(due), len(stuck))
    return {"due": len(due), "stuck": len(stuck)}
