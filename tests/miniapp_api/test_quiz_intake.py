"""Write-behind whole-attempt submits (services.quiz.intake): accepted in one Redis round
trip, recorded by the drain exactly once, shown the same before and after recording."""

from __future__ import annotations

import os
import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.db import utcnow
from models.quiz import AnswerEvent, Attempt, AttemptStatus, PointEntry
from services.quiz import intake, leaderboard, recording
from tests.helpers import Api, make_person, token_for
from tests.miniapp_api import test_quiz_api
from tests.services.quiz.test_attempts import correct_labels

env = test_quiz_api.env  # the same fixture
new_paper = test_quiz_api.new_paper

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="write-behind needs Redis")


def _ext(env):
    return env["w"].client.application.extensions["zhizhi"]


def test_a_partial_submit_keeps_saved_answers_and_the_record_equals_the_response(db, env):
    w = env["w"]
    aid = w.post(f"/quiz/papers/{new_paper(env)}/attempts").json["data"]["attempt_id"]
    right = correct_labels(db, aid)
    saved = w.client.put(
        f"/api/v1/quiz/attempts/{aid}/items/1",
        json={"choice": right[0]["choice"]},
        headers={"Authorization": f"Bearer {w.token}"},
    )
    assert saved.status_code == 200, saved.json
    db.commit()
    rest = [a for a in right if a["position"] != 1]
    done = w.post(f"/quiz/attempts/{aid}/submit", {"answers": rest}, headers={"Idempotency-Key": "p-1"})
    assert done.status_code == 200, done.json
    data = done.json["data"]
    assert data["summary"]["answered"] == data["summary"]["correct"] == len(right)
    assert _ext(env).redis.xlen(intake.STREAM) == 1  # accepted, not yet recorded
    assert db.get(Attempt, aid).status == AttemptStatus.in_progress

    shown = w.get(f"/quiz/attempts/{aid}").json["data"]  # the worker's read records it first
    assert shown["status"] == "submitted"
    assert shown["items"] == data["items"] and shown["summary"] == data["summary"]
    assert _ext(env).redis.xlen(intake.STREAM) == 0
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(AnswerEvent)) == len(right)
    assert db.scalar(select(func.count()).select_from(PointEntry)) == 1


def test_a_drain_run_twice_records_once_and_saves_are_refused_after_submit(db, env):
    w = env["w"]
    aid = w.post(f"/quiz/papers/{new_paper(env)}/attempts").json["data"]["attempt_id"]
    db.commit()
    body = {"answers": correct_labels(db, aid)}
    assert w.post(f"/quiz/attempts/{aid}/submit", body).status_code == 200
    ext = _ext(env)
    entries = ext.redis.xrange(intake.STREAM)
    assert recording.drain(ext.db, ext.redis) == 1
    ext.redis.xadd(intake.STREAM, entries[0][1])  # as if the delete after commit had been lost
    assert recording.drain(ext.db, ext.redis) == 1
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(PointEntry)) == 1
    assert db.scalar(select(func.count()).select_from(AnswerEvent)) == len(body["answers"])
    late_save = w.client.put(
        f"/api/v1/quiz/attempts/{aid}/items/1",
        json={"choice": "A"},
        headers={"Authorization": f"Bearer {w.token}"},
    )
    assert late_save.status_code == 409


def test_bad_input_accepts_nothing(db, env):
    w = env["w"]
    aid = w.post(f"/quiz/papers/{new_paper(env)}/attempts").json["data"]["attempt_id"]
    db.commit()
    for answers, field in (
        ([{"position": 99, "choice": "A"}], "position"),
        ([{"position": 1, "choice": "Z"}], "choice"),
    ):
        r = w.post(f"/quiz/attempts/{aid}/submit", {"answers": answers})
        assert r.status_code == 422 and field in r.json["error"]["fields"], r.json
    other = make_person(db, "grid_worker", org=env["tree"]["grid"], name="吴网格")
    db.commit()
    stranger = Api(w.client, token_for(db, other))
    assert stranger.post(f"/quiz/attempts/{aid}/submit", {"answers": []}).status_code == 403
    assert _ext(env).redis.xlen(intake.STREAM) == 0
    assert w.post(f"/quiz/attempts/{aid}/submit", {"answers": []}).status_code == 200


def test_the_sweep_waits_for_an_accepted_submit_and_then_refuses_late_ones(db, env):
    from services.quiz import attempts

    w = env["w"]
    aid = w.post(f"/quiz/papers/{new_paper(env, duration_seconds=60)}/attempts").json["data"]["attempt_id"]
    db.commit()
    assert w.post(f"/quiz/attempts/{aid}/submit", {"answers": correct_labels(db, aid)}).status_code == 200
    ext = _ext(env)
    later = utcnow() + timedelta(hours=1)
    with w.client.application.app_context():
        assert attempts.close_overdue(db, later) == 0  # pending: not closed as expired
        db.commit()
        assert recording.drain(ext.db, ext.redis) == 1
        db.expire_all()
        assert db.get(Attempt, aid).status == AttemptStatus.submitted
        aid2 = w.post(f"/quiz/papers/{new_paper(env, title='二', duration_seconds=60)}/attempts").json[
            "data"
        ]["attempt_id"]
        db.commit()
        assert attempts.close_overdue(db, later) == 1
        db.commit()
    r = w.post(f"/quiz/attempts/{aid2}/submit", {"answers": []})
    assert r.status_code == 409, r.json


def test_competition_board_from_redis_equals_sql_after_write_behind_submits(db, env):
    t = env["t"]
    now = utcnow()
    pid = new_paper(env)
    cid = t.post(
        "/quiz/competitions",
        {
            "title": "写后比武",
            "paper_id": pid,
            "org_unit_id": env["tree"]["district"].id,
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    ).json["data"]["competition_id"]
    rng = random.Random(7)
    workers = [make_person(db, "grid_worker", org=env["tree"]["grid"], name=f"网格{i}") for i in range(24)]
    db.commit()
    for p in workers:
        api = Api(env["w"].client, token_for(db, p))
        db.commit()
        aid = api.post(f"/quiz/competitions/{cid}/entry").json["data"]["attempt_id"]
        db.commit()
        answers = [
            a if rng.random() < 0.6 else {"position": a["position"], "choice": ["A"] * len(a["choice"])}
            for a in correct_labels(db, aid)
            if rng.random() < 0.9
        ]
        assert api.post(f"/quiz/attempts/{aid}/submit", {"answers": answers}).status_code == 200
    board = t.get(f"/quiz/competitions/{cid}/leaderboard?limit=200").json["data"]  # records all first
    db.expire_all()
    expected = list(
        db.scalars(
            select(Attempt.person_id)
            .where(Attempt.competition_id == cid, Attempt.status == AttemptStatus.submitted)
            .order_by(*leaderboard.order_by())
        )
    )
    assert len(expected) == len(workers)
    assert [row["person_id"] for row in board["items"]] == expected


def test_a_workers_read_records_only_their_own_pending_submit(db, env):
    w = env["w"]
    other = make_person(db, "grid_worker", org=env["tree"]["grid"], name="郑网格")
    db.commit()
    o = Api(w.client, token_for(db, other))
    db.commit()
    pid = new_paper(env)
    first = o.post(f"/quiz/papers/{pid}/attempts").json["data"]["attempt_id"]
    mine = w.post(f"/quiz/papers/{pid}/attempts").json["data"]["attempt_id"]
    db.commit()
    assert o.post(f"/quiz/attempts/{first}/submit", {"answers": correct_labels(db, first)}).status_code == 200
    assert w.post(f"/quiz/attempts/{mine}/submit", {"answers": correct_labels(db, mine)}).status_code == 200
    ext = _ext(env)
    assert ext.redis.xlen(intake.STREAM) == 2
    assert w.get("/quiz/me/points").json["data"]["balance"] == 5  # mine, found by its stream id
    assert ext.redis.xlen(intake.STREAM) == 1  # the other worker's waits for the drain
    db.expire_all()
    assert db.get(Attempt, first).status == AttemptStatus.in_progress
    assert db.get(Attempt, mine).status == AttemptStatus.submitted
    assert recording.drain(ext.db, ext.redis) == 1


def test_a_replay_rebuilds_the_same_bytes_and_keeps_no_body_in_redis(db, env):
    w = env["w"]
    aid = w.post(f"/quiz/papers/{new_paper(env)}/attempts").json["data"]["attempt_id"]
    db.commit()
    body = {"answers": correct_labels(db, aid)[:-1]}  # one left unanswered
    first = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "rb-1"})
    assert first.status_code == 200
    ext = _ext(env)
    kept = ext.redis.hgetall(intake.state_key(aid))
    assert b"resp" not in kept and b"final" in kept  # answers and time, not the 4 KB body
    again = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "rb-1"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.data == first.data
    recording.drain(ext.db, ext.redis)  # recorded meanwhile: the replay is still the same
    third = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "rb-1"})
    assert third.data == first.data
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(PointEntry)) == 1


def test_a_replay_of_a_submit_accepted_by_the_previous_release_returns_its_kept_body(db, env):
    """States written before this release kept the response body as 'resp'."""
    w = env["w"]
    aid = w.post(f"/quiz/papers/{new_paper(env)}/attempts").json["data"]["attempt_id"]
    db.commit()
    body = {"answers": correct_labels(db, aid)}
    first = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "old-1"})
    ext = _ext(env)
    key = intake.state_key(aid)
    ext.redis.hdel(key, "final", "at")
    ext.redis.hset(key, "resp", first.data)
    again = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "old-1"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.data == first.data


def test_a_submit_whose_reply_was_lost_after_redis_ran_it_is_accepted_once(db, env, monkeypatch):
    """core.redislink sends the script again through the client when the reply is lost
    (here: a timeout after Redis ran it); without an Idempotency-Key the request must
    still get its graded attempt, not "already submitted", and be accepted once."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from core import redislink

    w = env["w"]
    aid = w.post(f"/quiz/papers/{new_paper(env)}/attempts").json["data"]["attempt_id"]
    db.commit()
    body = {"answers": correct_labels(db, aid)}
    real_call = redislink.Link.call
    lost = []

    def reply_lost(self, command):
        reply = real_call(self, command)
        if command[0] == "EVALSHA" and command[1] == intake.ACCEPT_SHA and not lost:
            lost.append(reply)
            raise RedisTimeoutError("reply lost")
        return reply

    monkeypatch.setattr(redislink.Link, "call", reply_lost)
    done = w.post(f"/quiz/attempts/{aid}/submit", body)
    assert lost and lost[0][0] == b"ok"  # Redis had accepted it before the reply was lost
    assert done.status_code == 200, done.json
    assert "Idempotent-Replayed" not in done.headers
    assert done.json["data"]["summary"]["correct"] == len(body["answers"])
    ext = _ext(env)
    assert ext.redis.xlen(intake.STREAM) == 1
    other = w.post(f"/quiz/attempts/{aid}/submit", body)  # a second request is a second submit
    assert other.status_code == 409 and other.json["error"]["code"] == "attempt_already_submitted"
    recording.drain(ext.db, ext.redis)
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(PointEntry)) == 1


def test_finalize_records_submits_accepted_in_time_instead_of_expiring_them(db, env):
    """Redis accepted the submit (it waits in the stream): finalising must not close the
    attempt as expired under it (the drain would then drop the submit)."""
    from core.errors import Conflict
    from services.quiz import competitions

    t, w = env["t"], env["w"]
    now = utcnow()
    cid = t.post(
        "/quiz/competitions",
        {
            "title": "写后收尾",
            "paper_id": new_paper(env),
            "org_unit_id": env["tree"]["district"].id,
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    ).json["data"]["competition_id"]
    aid = w.post(f"/quiz/competitions/{cid}/entry").json["data"]["attempt_id"]
    db.commit()
    assert w.post(f"/quiz/attempts/{aid}/submit", {"answers": correct_labels(db, aid)}).status_code == 200
    ext = _ext(env)
    later = now + timedelta(hours=2)
    with w.client.application.app_context():
        with pytest.raises(Conflict) as exc:
            competitions.finalize(db, cid, later)
        assert exc.value.code == "attempt_being_recorded"
        assert competitions.finalize_due(db, later) == []
        assert recording.drain(ext.db, ext.redis) == 1
        db.expire_all()
        assert competitions.finalize(db, cid, later)["ranked"] == 1
    assert db.get(Attempt, aid).status == AttemptStatus.submitted
    assert db.scalar(select(PointEntry.delta).where(PointEntry.source_type == "competition")) == 10
