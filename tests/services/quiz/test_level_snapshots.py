"""Quarterly worker levels: the periodic row queues batches, each batch assesses, stores
and snapshots every grid worker once per quarter, and only workers whose level changed
are told; running the quarter again changes and sends nothing. Workers read their own
history over the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from jobs.schedule import previous_quarter, quiz_levels
from models.identity import Identity, IdentityKind
from models.jobs import Notification
from models.quiz import LevelSnapshot, WorkerLevel
from services.quiz import levels, points
from tests.helpers import Api, token_for
from tests.services.quiz.factories import make_bank, org_tree, trainer, worker
from tests.services.quiz.test_levels_portraits import answer_events

# The Q2 slot: 1 April 03:00 in Shanghai is 31 March 19:00 UTC; it rates 2026Q1.
SLOT = datetime(2026, 3, 31, 19, 0, tzinfo=UTC)


def _ding(db, person_id: int) -> str:
    userid = f"dt_{person_id}"
    db.add(Identity(person_id=person_id, kind=IdentityKind.dingtalk, app_id="d", external_id=userid))
    db.flush()
    return userid


@pytest.fixture
def people(db):
    make_bank(db)
    tree = org_tree(db)
    rising = worker(db, tree["grid"], "进步者")
    for topic in ("法律法规", "应急处置"):
        answer_events(db, rising.person_id, topic, right=12, wrong=1, start=SLOT - timedelta(days=5))
    points.award(db, rising.person_id, "award", "q1", 65, "奖励", SLOT - timedelta(days=3))
    steady = worker(db, tree["grid"], "新人")
    falling = worker(db, tree["grid"], "退步者")
    db.add(
        LevelSnapshot(
            person_id=falling.person_id,
            quarter="2025Q4",
            level=3,
            previous_level=1,
            evidence={},
            rules_version="2026-01",
            computed_at=SLOT - timedelta(days=90),
        )
    )
    db.add(WorkerLevel(person_id=falling.person_id, level=3, rules_version="2026-01", computed_at=SLOT))
    coach = trainer(db, tree["district"])
    ids = {"rising": rising, "steady": steady, "falling": falling, "coach": coach}
    for a in ids.values():
        _ding(db, a.person_id)
    db.flush()
    return {k: a.person_id for k, a in ids.items()}


def _count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def test_quarterly_levels_snapshot_every_worker_once_and_notify_changes(db, people, platforms, run_jobs):
    _, dingtalk = platforms
    assert previous_quarter(SLOT) == "2026Q1"
    assert quiz_levels(db, SLOT) == {"quarter": "2026Q1", "batches": 1}
    db.commit()
    run_jobs()
    db.expire_all()

    snaps = {
        s.person_id: s for s in db.scalars(select(LevelSnapshot).where(LevelSnapshot.quarter == "2026Q1"))
    }
    assert set(snaps) == {people["rising"], people["steady"], people["falling"]}  # not the trainer
    assert snaps[people["rising"]].level >= 3 and snaps[people["rising"]].previous_level == 1
    assert (snaps[people["steady"]].level, snaps[people["steady"]].previous_level) == (1, 1)
    assert (snaps[people["falling"]].level, snaps[people["falling"]].previous_level) == (1, 3)
    assert snaps[people["rising"]].evidence["points_90d"] == 65
    # the stored level (the competition bracket) follows the assessment
    assert levels.current_level(db, people["rising"]) == snaps[people["rising"]].level
    assert levels.current_level(db, people["falling"]) == 1

    sent = {
        n.person_id: n for n in db.scalars(select(Notification).where(Notification.kind == levels.LEVEL_KIND))
    }
    assert set(sent) == {people["rising"], people["falling"]}
    up = sent[people["rising"]]
    assert up.dedup_key == f"level:{people['rising']}:2026Q1"
    assert up.content["text"].startswith(
        f"2026年第1季度星级评定：您的星级由 1 星提升为 {snaps[people['rising']].level} 星"
    )
    assert "由 3 星调整为 1 星" in sent[people["falling"]].content["text"]
    delivered = len(dingtalk.delivered)
    assert delivered == 2

    # the quarter again (a retry, a second scheduler, a batch run twice): nothing new
    assert quiz_levels(db, SLOT) == {"quarter": "2026Q1", "batches": 0}
    again = levels.snapshot_workers(db, "2026Q1", SLOT, sorted(snaps))
    assert again == {"quarter": "2026Q1", "assessed": 0, "changed": []}
    db.commit()
    run_jobs()
    assert _count(db, LevelSnapshot, LevelSnapshot.quarter == "2026Q1") == 3
    assert _count(db, Notification, Notification.kind == levels.LEVEL_KIND) == 2
    assert len(dingtalk.delivered) == delivered


def test_next_quarter_compares_with_the_last_snapshot(db, people):
    levels.snapshot_workers(db, "2026Q1", SLOT, [people["rising"]])
    first = db.scalars(select(LevelSnapshot).where(LevelSnapshot.person_id == people["rising"])).one()
    later = SLOT + timedelta(days=91)  # the 90-day points have expired by then
    out = levels.snapshot_workers(db, "2026Q2", later, [people["rising"]])
    assert out["changed"] == [people["rising"]]
    q2 = db.scalars(
        select(LevelSnapshot).where(
            LevelSnapshot.person_id == people["rising"], LevelSnapshot.quarter == "2026Q2"
        )
    ).one()
    assert (q2.previous_level, q2.level) == (first.level, 1)


def test_worker_reads_own_level_history_newest_first(app, db, client, people):
    levels.snapshot_workers(db, "2026Q1", SLOT, [people["falling"]])
    db.commit()
    from models.identity import Person

    api = Api(client, token_for(db, db.get(Person, people["falling"])))
    r = api.get("/quiz/me/level/history")
    assert r.status_code == 200, r.get_json()
    items = r.get_json()["data"]["items"]
    assert [(i["quarter"], i["level"], i["changed"]) for i in items] == [
        ("2026Q1", 1, True),
        ("2025Q4", 3, True),
    ]
    assert items[0]["label"] == "2026年第1季度" and items[0]["previous_level"] == 3
    # another worker sees only their own (empty) history
    other = Api(client, token_for(db, db.get(Person, people["steady"])))
    assert other.get("/quiz/me/level/history").get_json()["data"]["items"] == []
