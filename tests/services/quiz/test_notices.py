"""Quiz reminders as plain functions, then through the real outbox runner and push layer
to the fake DingTalk: the 08:30 daily-practice reminder and the notices 1 day / 30
minutes before a competition window opens. Who gets one, who does not, and a second run
(retry, second scheduler, overlapping run) sends nothing twice.

The batch jobs read the wall clock (a stale reminder is dropped), so these tests put
"today" and the competition windows around the real time.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from core.db import utcnow
from models.identity import Identity, IdentityKind, Person
from models.jobs import Notification
from models.platform import OutboxItem
from models.quiz import Competition
from services.quiz import attempts, competitions, notices, practice
from services.quiz.config import local_day
from tests.helpers import make_person
from tests.services.quiz.factories import make_bank, org_tree, trainer, worker
from tests.services.quiz.test_practice import right_answer

SEND = "/topapi/message/corpconversation/asyncsend_v2"


def _ding(db, person_id: int) -> str:
    userid = f"dt_{person_id}"
    db.add(Identity(person_id=person_id, kind=IdentityKind.dingtalk, app_id="d", external_id=userid))
    db.flush()
    return userid


def _sent(db, kind: str) -> dict[int, Notification]:
    db.expire_all()
    return {n.person_id: n for n in db.scalars(select(Notification).where(Notification.kind == kind))}


def _delivered(dingtalk, userid: str) -> int:
    return sum(1 for d in dingtalk.delivered if d["userid"] == userid)


@pytest.fixture
def tree(db):
    make_bank(db)
    return org_tree(db)


# -- daily practice -----------------------------------------------------------------


def test_practice_reminder_reaches_only_workers_who_have_not_finished_today(
    db, tree, platforms, run_jobs
) -> None:
    _, dingtalk = platforms
    now = utcnow()
    day = local_day(now)
    fresh = worker(db, tree["grid"], "未开始")
    partial = worker(db, tree["grid"], "做了一半")
    finished = worker(db, tree["grid"], "已完成")
    gone = worker(db, tree["grid"], "已停用")
    db.get(Person, gone.person_id).active = False
    coach = trainer(db, tree["district"])
    citizen = make_person(db, "citizen", name="居民")
    users = {p: _ding(db, p) for p in (fresh.person_id, partial.person_id, finished.person_id)}
    for p in (gone.person_id, coach.person_id, citizen.id):
        _ding(db, p)
    items = practice.start_daily(db, partial, now)["items"]
    for item in items[:2]:
        practice.answer(db, partial, item["item_id"], right_answer(db, item["item_id"]), now)
    practice.start_daily(db, finished, now - timedelta(days=1))  # yesterday's, left unanswered
    for item in practice.start_daily(db, finished, now)["items"]:
        practice.answer(db, finished, item["item_id"], right_answer(db, item["item_id"]), now)

    assert notices.practice_reminders(db, now) == {"day": day.isoformat(), "batches": 1}
    db.commit()
    run_jobs()

    sent = _sent(db, notices.PRACTICE_KIND)
    assert set(sent) == {fresh.person_id, partial.person_id}
    assert sent[fresh.person_id].dedup_key == f"practice:{fresh.person_id}:{day.isoformat()}"
    assert "还有 5 道题未完成" in sent[fresh.person_id].content["text"]
    assert "还有 3 道题未完成" in sent[partial.person_id].content["text"]
    assert "每日上限 5 分" in sent[fresh.person_id].content["text"]
    assert _delivered(dingtalk, users[fresh.person_id]) == 1
    assert _delivered(dingtalk, users[partial.person_id]) == 1
    assert _delivered(dingtalk, users[finished.person_id]) == 0
    calls = len(dingtalk.calls(SEND))

    # a retry of the periodic row, then of a batch: nothing new is queued or sent
    assert notices.practice_reminders(db, now)["batches"] == 0
    notices.remind_practice(db, [fresh.person_id, partial.person_id], day, now)
    db.commit()
    run_jobs()
    assert len(_sent(db, notices.PRACTICE_KIND)) == 2
    assert len(dingtalk.calls(SEND)) == calls


def test_practice_batches_split_the_workers_and_a_stale_batch_sends_nothing(db, tree) -> None:
    now = utcnow()
    day = local_day(now)
    ws = [worker(db, tree["grid"], f"网格员{n}") for n in range(5)]
    ids = sorted(w.person_id for w in ws)
    from services.quiz import roster

    assert list(roster.worker_batches(db, batch=2)) == [ids[:2], ids[2:4], ids[4:]]
    # a batch that only runs after that day is over says nothing about "today"
    out = notices.remind_practice(db, ids, day - timedelta(days=1), now)
    assert out["skipped"] == "stale" and _sent(db, notices.PRACTICE_KIND) == {}
    # the day of a slot is the Shanghai day: 08:30 Shanghai is 00:30 UTC
    first = notices.remind_practice(db, ids[:1], day, now)
    assert first == {"day": day.isoformat(), "reminded": 1, "finished": 0}


# -- competition notices ------------------------------------------------------------


def _competition(db, tree, starts, title="四月比武", unit="street") -> Competition:
    t = trainer(db, tree["district"], "出题培训员")
    paper = attempts.create_paper(
        db,
        t,
        {"title": "比武卷", "mode": "fixed", "question_ids": _question_ids(db)[:4], "duration_seconds": 600},
    )
    return competitions.create(
        db,
        t,
        {
            "title": title,
            "paper_id": paper.id,
            "org_unit_id": tree[unit].id,
            "starts_at": starts,
            "ends_at": starts + timedelta(hours=12),
        },
    )


def _question_ids(db) -> list[int]:
    from models.quiz import Question

    return list(db.scalars(select(Question.id).order_by(Question.id)))


def test_competition_notices_go_to_the_subtree_1_day_and_30_minutes_before(
    db, tree, platforms, run_jobs
) -> None:
    _, dingtalk = platforms
    t0 = utcnow()
    starts = t0 + timedelta(days=1, minutes=10)
    comp = _competition(db, tree, starts)  # for the street: the grid below it is in scope
    inside = worker(db, tree["grid"], "本街道网格员")
    elsewhere = worker(db, tree["other_grid"], "外区网格员")
    coach = trainer(db, tree["street"], "街道培训员")
    u_in, u_out = _ding(db, inside.person_id), _ding(db, elsewhere.person_id)
    _ding(db, coach.person_id)

    assert notices.competition_notices(db, t0) == {"notices": []}  # more than a day ahead
    day_before = starts - timedelta(days=1) + timedelta(minutes=2)
    out = notices.competition_notices(db, day_before)
    assert out == {"notices": [{"competition_id": comp.id, "minutes": 1440, "batches": 1}]}
    assert notices.competition_notices(db, day_before + timedelta(minutes=5)) == {"notices": []}
    db.commit()
    run_jobs()
    sent = _sent(db, notices.COMPETITION_KIND)
    assert set(sent) == {inside.person_id}
    n = sent[inside.person_id]
    assert n.dedup_key == f"competition:{comp.id}:{inside.person_id}:1440"
    assert "《四月比武》将于明天" in n.content["text"] and "每人限参加一次" in n.content["text"]
    assert _delivered(dingtalk, u_in) == 1 and _delivered(dingtalk, u_out) == 0

    # nothing between the stages, then the 30-minute notice, once
    assert notices.competition_notices(db, starts - timedelta(hours=2)) == {"notices": []}
    half_hour = starts - timedelta(minutes=29)
    assert notices.competition_notices(db, half_hour)["notices"] == [
        {"competition_id": comp.id, "minutes": 30, "batches": 1}
    ]
    assert notices.competition_notices(db, half_hour + timedelta(minutes=5)) == {"notices": []}
    db.commit()
    run_jobs()
    keys = sorted(
        n.dedup_key
        for n in db.scalars(select(Notification).where(Notification.kind == notices.COMPETITION_KIND))
    )
    assert keys == [
        f"competition:{comp.id}:{inside.person_id}:1440",
        f"competition:{comp.id}:{inside.person_id}:30",
    ]
    # a batch retried after the fact adds nothing
    notices.notify_competition(db, comp.id, 30, [inside.person_id], utcnow())
    db.commit()
    run_jobs()
    assert db.scalar(select(func.count()).select_from(Notification)) == 2
    # once the window has opened there is nothing left to announce
    assert notices.competition_notices(db, starts + timedelta(minutes=1)) == {"notices": []}


def test_a_late_competition_gets_only_the_nearest_notice(db, tree) -> None:
    t0 = utcnow()
    comp = _competition(db, tree, t0 + timedelta(minutes=20), title="临时比武", unit="district")
    w = worker(db, tree["grid"])
    out = notices.competition_notices(db, t0)
    assert out["notices"] == [{"competition_id": comp.id, "minutes": 30, "batches": 1}]
    item = db.scalars(select(OutboxItem).where(OutboxItem.kind == notices.COMPETITION_JOB)).one()
    assert item.payload["ids"] == [w.person_id]
    # the batch text counts down from the time it runs
    res = notices.notify_competition(db, comp.id, 30, item.payload["ids"], t0)
    assert res["notified"] == 1
    n = _sent(db, notices.COMPETITION_KIND)[w.person_id]
    assert "将于 20 分钟后" in n.content["text"]
    # a finalised or closed competition is not announced by a late batch
    assert notices.notify_competition(db, comp.id, 30, [w.person_id], comp.ends_at)["skipped"] == "closed"


def test_due_competitions_are_found_through_the_start_time_index(db, tree) -> None:
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("EXPLAIN plan is PostgreSQL's")
    stmt = notices.due_query(utcnow())
    sql = stmt.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
    db.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in db.execute(text(f"EXPLAIN {sql}")))
    assert "ix_quiz_competitions_status_starts" in plan, plan
