"""Runs one outbox row: claim, handle, record. The RQ entry point is ``execute``.

Claiming is an atomic UPDATE on the row, so two workers (or RQ delivering a job twice)
never run it twice. The handler's database writes and the row's ``done`` commit together.
"""

from __future__ import annotations

import contextvars
import logging
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from core.db import utcnow
from jobs.registry import JobSpec, PermanentError, TransientError, spec_for

log = logging.getLogger("zhizhi.jobs")

BACKOFF_BASE = 5
BACKOFF_MAX = 600


#: The outbox job being run in this context ("outbox-<id>"), stamped on log lines.
CURRENT_JOB: contextvars.ContextVar[str | None] = contextvars.ContextVar("zhizhi_job", default=None)


class JobIdFilter(logging.Filter):
    """Adds ``record.job_id`` and prefixes the message with it while a job runs, so every
    line a handler (or a library it calls) logs can be traced to its outbox row."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_id = CURRENT_JOB.get()
        record.job_id = job_id or "-"
        if job_id and not getattr(record, "_job_stamped", False):
            record.msg, record._job_stamped = f"[{job_id}] {record.msg}", True
        return True


def install_job_log_filter() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, JobIdFilter) for f in handler.filters):
            handler.addFilter(JobIdFilter())


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX))


def execute(item_id: int) -> str:
    """RQ entry point: takes an id, builds the app lazily once per worker process."""
    from jobs.context import get_app

    app = get_app()
    with app.app_context():
        return run_item(app, item_id)


def _claim(session: Session, item_id: int) -> tuple[str, JobSpec | None]:
    from models.platform import OutboxItem, OutboxStatus

    item = session.get(OutboxItem, item_id)
    if item is None:
        return "missing", None
    if item.status in (OutboxStatus.done, OutboxStatus.failed):
        return f"already_{item.status.value}", None
    try:
        spec = spec_for(item.kind)
    except KeyError as exc:
        item.status, item.last_error, item.finished_at = OutboxStatus.failed, str(exc), utcnow()
        return "failed", None
    now = utcnow()
    if item.status == OutboxStatus.running:
        started = item.started_at or now
        if started > now - timedelta(seconds=spec.timeout):
            return "running_elsewhere", None
        if spec.external_send:
            item.status = OutboxStatus.failed
            item.finished_at = now
            item.last_error = "发送中途进程中断，无法确认是否已送达，为避免重复发送未自动重试"
            _on_failure(session, spec, item)
            return "failed", None
    stmt = (
        update(OutboxItem)
        .where(
            OutboxItem.id == item_id, OutboxItem.status == item.status, OutboxItem.attempts == item.attempts
        )
        .values(status=OutboxStatus.running, attempts=item.attempts + 1, started_at=now)
        .execution_options(synchronize_session=False)
    )
    if session.execute(stmt).rowcount != 1:
        return "running_elsewhere", None
    return "claimed", spec


def run_item(app: Flask, item_id: int) -> str:
    """Run the outbox row ``item_id`` once; returns what happened (for logs and tests)."""
    ext = app.extensions["zhizhi"]
    token = CURRENT_JOB.set(f"outbox-{item_id}")
    try:
        with ext.db.session() as s:
            outcome, spec = _claim(s, item_id)
        if outcome != "claimed" or spec is None:
            log.info("outbox %s: %s", item_id, outcome)
            return outcome
        return _handle(app, item_id, spec)
    finally:
        CURRENT_JOB.reset(token)


def _handle(app: Flask, item_id: int, spec: JobSpec) -> str:
    from models.platform import OutboxItem, OutboxStatus

    ext = app.extensions["zhizhi"]
    session = ext.db.sessionmaker()
    ctx = app.app_context()  # handlers may use current_app (inline runs, tests, RQ alike)
    ctx.push()
    try:
        item = session.get(OutboxItem, item_id, populate_existing=True)
        result: Any = spec.func(session, item)
        item.status = OutboxStatus.done
        item.finished_at = utcnow()
        item.result = result if isinstance(result, dict) else None
        item.last_error = None
        ext.commit(session)
        log.info("outbox %s (%s): done", item_id, spec.kind)
        return "done"
    except PermanentError as exc:
        session.rollback()
        return _record_failure(app, item_id, exc.reason, permanent=True)
    except TransientError as exc:
        session.rollback()
        return _record_failure(app, item_id, exc.reason, permanent=False)
    except Exception as exc:
        session.rollback()
        log.exception("outbox %s (%s) raised", item_id, spec.kind)
        return _record_failure(app, item_id, f"{type(exc).__name__}: {exc}", permanent=False)
    finally:
        session.close()
        ctx.pop()


def _spec_or_none(kind: str) -> JobSpec | None:
    try:
        return spec_for(kind)
    except KeyError:
        return None


def _on_failure(session: Session, spec: JobSpec | None, item: Any) -> None:
    if spec is not None and spec.on_failure is not None:
        spec.on_failure(session, item, item.last_error or "")


def _record_failure(app: Flask, item_id: int, reason: str, *, permanent: bool) -> str:
    from models.platform import OutboxItem, OutboxStatus

    ext = app.extensions["zhizhi"]
    with ext.db.session() as s:
        item = s.get(OutboxItem, item_id)
        if item is None:
            return "missing"
        item.last_error = reason[:2000]
        if permanent or item.attempts >= item.max_attempts:
            item.status = OutboxStatus.failed
            item.finished_at = utcnow()
            outcome = "failed"
            _on_failure(s, _spec_or_none(item.kind), item)
        else:
            item.status = OutboxStatus.pending
            item.next_attempt_at = utcnow() + backoff(item.attempts)
            outcome = "retry"
    log.warning("outbox %s: %s (%s)", item_id, outcome, reason)
    return outcome
