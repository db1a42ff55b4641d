"""Outbox rows: committed with the change, run after commit, deduplicated, retried, recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import outbox
from core.db import utcnow
from jobs.maintenance import reconcile
from jobs.registry import PermanentError, TransientError, job
from jobs.runner import run_item
from models.platform import AuditEntry, OutboxItem, OutboxStatus

CALLS: list[int] = []


@job("test.audit")
def _audit(session, item):
    """Writes one audit row per run: the effect is visible in the same transaction as 'done'."""
    CALLS.append(item.id)
    session.add(AuditEntry(action="test", object_type="outbox", object_id=str(item.id), data=item.payload))
    return {"ok": True}


@job("test.permanent")
def _permanent(session, item):
    raise PermanentError("40003 invalid openid")


@job("test.transient", max_attempts=2)
def _transient(session, item):
    raise TransientError("-1 system busy")


def _row(db, item_id):
    db.expire_all()
    return db.get(OutboxItem, item_id)


def test_row_runs_once_and_a_second_run_is_a_no_op(app, db) -> None:
    item_id = outbox.add(db, "test.audit", {"n": 1})
    db.commit()
    assert run_item(app, item_id) == "done"
    assert run_item(app, item_id) == "already_done"
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == 1
    assert _row(db, item_id).result == {"ok": True}


def test_dedup_key_adds_the_row_only_once(db) -> None:
    first = outbox.add(db, "test.audit", {}, dedup_key="expiry:7:30")
    second = outbox.add(db, "test.audit", {}, dedup_key="expiry:7:30")
    assert first is not None and second is None
    assert db.scalar(select(func.count()).select_from(OutboxItem)) == 1


def test_permanent_failure_is_recorded_without_retry(app, db) -> None:
    item_id = outbox.add(db, "test.permanent", {})
    db.commit()
    assert run_item(app, item_id) == "failed"
    row = _row(db, item_id)
    assert row.status == OutboxStatus.failed and row.attempts == 1 and "40003" in row.last_error


def test_transient_failure_backs_off_then_fails_after_max_attempts(app, db) -> None:
    item_id = outbox.add(db, "test.transient", {})
    db.commit()
    assert run_item(app, item_id) == "retry"
    row = _row(db, item_id)
    assert row.status == OutboxStatus.pending and row.next_attempt_at > utcnow()
    row.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.commit()
    assert run_item(app, item_id) == "failed"
    assert _row(db, item_id).attempts == 2


def test_reconciler_picks_up_stuck_running_rows(app, db) -> None:
    item_id = outbox.add(db, "test.audit", {})
    row = db.get(OutboxItem, item_id)
    row.status, row.attempts, row.started_at = OutboxStatus.running, 1, utcnow() - timedelta(hours=1)
    db.commit()
    report = reconcile(app)
    assert report["stuck"] == 1
    if app.extensions["zhizhi"].settings.inline_jobs:
        assert _row(db, item_id).status == OutboxStatus.done
    else:
        assert run_item(app, item_id) == "done"


def test_a_fresh_running_row_is_left_to_its_worker(app, db) -> None:
    item_id = outbox.add(db, "test.audit", {})
    row = db.get(OutboxItem, item_id)
    row.status, row.attempts, row.started_at = OutboxStatus.running, 1, utcnow()
    db.commit()
    assert run_item(app, item_id) == "running_elsewhere"


def test_commit_dispatches_new_rows(app, db) -> None:
    ext = app.extensions["zhizhi"]
    item_id = outbox.add(db, "test.audit", {"x": 1})
    ext.commit(db)
    if ext.settings.inline_jobs:
        assert _row(db, item_id).status == OutboxStatus.done
    else:
        from rq import Queue

        from jobs.dispatch import job_id
        from jobs.queues import queue_name

        q = Queue(queue_name(ext.settings.queue_prefix, "default"), connection=ext.rq_redis)
        assert job_id(item_id) in q.job_ids


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a real Redis for rq worker")
def test_real_rq_worker_runs_committed_rows(app, committed_db, test_env) -> None:
    ext = app.extensions["zhizhi"]
    ids = [outbox.add(committed_db, "test.audit", {"i": i}) for i in range(3)]
    ext.commit(committed_db)
    env = {**os.environ, **test_env, "JOB_MODULES": "tests.jobs.test_outbox"}
    queue = f"{test_env['QUEUE_PREFIX']}default"
    subprocess.run(
        [sys.executable, "-m", "jobs.worker", "--burst", "--queues", queue], env=env, check=True, timeout=120
    )
    committed_db.expire_all()
    rows = committed_db.scalars(select(OutboxItem).where(OutboxItem.id.in_(ids))).all()
    assert {r.status for r in rows} == {OutboxStatus.done}
    assert committed_db.scalar(select(func.count()).select_from(AuditEntry)) == 3
