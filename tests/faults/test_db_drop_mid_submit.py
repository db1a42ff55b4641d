"""The database connection dropped in the middle of a whole-attempt submit
(``pg_terminate_backend`` from another connection): the client gets a clear retryable
error, nothing of the attempt is half-written, and the retry with the same
Idempotency-Key submits exactly once.

A submit is accepted write-behind when Redis is up (services.quiz.intake): the database
is then touched only to build an uncached attempt sheet, and the recording happens in
the drain. Each of those places, and the synchronous path taken when Redis is down, is
tested here."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from models.quiz import Attempt, AttemptStatus, PointEntry
from services.quiz import attempts, intake, recording
from tests.helpers import Api, make_person, token_for
from tests.services.quiz.factories import make_bank, org_tree
from tests.services.quiz.test_attempts import correct_labels

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"), reason="needs PostgreSQL"
)


def _setup(app, s):
    ids = make_bank(s)
    tree = org_tree(s)
    worker = make_person(s, "grid_worker", org=tree["grid"], name="周网格")
    trainer = make_person(s, "trainer", org=tree["district"], name="沈培训")
    w, t = Api(app.test_client(), token_for(s, worker)), Api(app.test_client(), token_for(s, trainer))
    s.commit()
    paper = t.post(
        "/quiz/papers",
        {"title": "断连测试", "mode": "fixed", "question_ids": ids[-5:], "duration_seconds": 600},
    )
    assert paper.status_code == 201, paper.json
    aid = w.post(f"/quiz/papers/{paper.json['data']['paper_id']}/attempts").json["data"]["attempt_id"]
    body = {"answers": correct_labels(s, aid)}
    s.rollback()
    return w, aid, body


def _kill(engine, session, dropped: list) -> None:
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
    with engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.commit()
    dropped.append(pid)


def test_connection_dropped_mid_submit_is_retryable_and_the_retry_submits_once(
    app, committed_db, monkeypatch
) -> None:
    """The synchronous path (Redis unavailable, or the embedded mode)."""
    s = committed_db
    w, aid, body = _setup(app, s)
    monkeypatch.setattr(intake, "enabled", lambda app: False)
    engine = app.extensions["zhizhi"].db.engine
    original, dropped = attempts._finish, []

    def finish_after_the_connection_dies(session, *args, **kwargs):
        if not dropped:
            _kill(engine, session, dropped)
        return original(session, *args, **kwargs)

    monkeypatch.setattr(attempts, "_finish", finish_after_the_connection_dies)
    first = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "drop-1"})
    assert dropped, "the connection was not terminated"
    assert first.status_code == 503, first.json
    assert first.json["error"]["code"] == "temporarily_unavailable"
    assert "重试" in first.json["error"]["message"]

    s.expire_all()
    assert s.get(Attempt, aid).status == AttemptStatus.in_progress  # nothing half-written
    assert s.scalar(select(func.count()).select_from(PointEntry)) == 0

    retry = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "drop-1"})
    again = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "drop-1"})
    assert retry.status_code == 200, retry.json
    assert again.get_data() == retry.get_data() and again.headers["Idempotent-Replayed"] == "true"
    s.expire_all()
    assert s.get(Attempt, aid).status == AttemptStatus.submitted
    assert s.scalar(select(func.count()).select_from(PointEntry)) == 1


needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis")


@needs_redis
def test_connection_dropped_while_building_the_sheet_accepts_nothing_and_the_retry_submits_once(
    app, committed_db, monkeypatch
) -> None:
    s = committed_db
    w, aid, body = _setup(app, s)
    ext = app.extensions["zhizhi"]
    ext.redis.delete(intake.state_key(aid))  # not cached: the submit builds it from the database
    original, dropped = intake.build_sheet, []

    def build_after_the_connection_dies(session, attempt):
        if not dropped:
            _kill(ext.db.engine, session, dropped)
        return original(session, attempt)

    monkeypatch.setattr(intake, "build_sheet", build_after_the_connection_dies)
    first = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "drop-2"})
    assert dropped and first.status_code == 503, first.json
    assert first.json["error"]["code"] == "temporarily_unavailable"
    assert ext.redis.hget(intake.state_key(aid), "status") is None  # nothing accepted
    assert ext.redis.xlen(intake.STREAM) == 0

    retry = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "drop-2"})
    again = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "drop-2"})
    assert retry.status_code == 200, retry.json
    assert again.get_data() == retry.get_data() and again.headers["Idempotent-Replayed"] == "true"
    assert w.get(f"/quiz/attempts/{aid}").json["data"]["status"] == "submitted"
    s.expire_all()
    assert s.scalar(select(func.count()).select_from(PointEntry)) == 1


@needs_redis
def test_connection_dropped_mid_recording_keeps_the_submit_and_the_next_drain_records_it_once(
    app, committed_db, monkeypatch
) -> None:
    s = committed_db
    w, aid, body = _setup(app, s)
    ext = app.extensions["zhizhi"]
    accepted = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "drop-3"})
    assert accepted.status_code == 200, accepted.json
    original, dropped = attempts._finish, []

    def finish_after_the_connection_dies(session, *args, **kwargs):
        if not dropped:
            _kill(ext.db.engine, session, dropped)
        return original(session, *args, **kwargs)

    monkeypatch.setattr(attempts, "_finish", finish_after_the_connection_dies)
    with pytest.raises(OperationalError):
        recording.drain(ext.db, ext.redis)
    assert dropped and ext.redis.xlen(intake.STREAM) == 1  # kept for the next drain
    s.expire_all()
    assert s.get(Attempt, aid).status == AttemptStatus.in_progress
    assert s.scalar(select(func.count()).select_from(PointEntry)) == 0

    assert recording.drain(ext.db, ext.redis) == 1
    assert recording.drain(ext.db, ext.redis) == 0
    s.expire_all()
    assert s.get(Attempt, aid).status == AttemptStatus.submitted
    assert s.scalar(select(func.count()).select_from(PointEntry)) == 1
    shown = w.get(f"/quiz/attempts/{aid}").json["data"]
    submitted = accepted.json["data"]
    assert shown["summary"] == submitted["summary"] and shown["items"] == submitted["items"]
