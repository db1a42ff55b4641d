from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.errors import Forbidden, RateLimited
from models.quiz import AnswerEvent, Question, QuestionTopic, Topic
from services.quiz import bank, levels, points, portraits, practice
from tests.services.quiz.factories import NOW, make_bank, org_tree, trainer, worker


def answer_events(db, person_id: int, topic: str, right: int, wrong: int, start=NOW, step=timedelta(hours=1)):
    qids = list(
        db.scalars(
            select(Question.id)
            .join(QuestionTopic, QuestionTopic.question_id == Question.id)
            .join(Topic, Topic.id == QuestionTopic.topic_id)
            .where(Topic.name == topic)
        )
    )
    at = start
    for n in range(right + wrong):
        qid = qids[n % len(qids)]
        v = bank.current(db, bank.get(db, qid))
        ok = n < right
        db.add(
            AnswerEvent(
                person_id=person_id,
                question_id=qid,
                version_id=v.id,
                correct=ok,
                score=float(ok),
                source="attempt",
                source_id=person_id * 100000 + db.info.setdefault("seq", 0) + n,
                answered_at=at,
            )
        )
        at += step
    db.info["seq"] = db.info.get("seq", 0) + right + wrong
    db.flush()


@pytest.fixture
def env(db):
    make_bank(db)
    return org_tree(db)


def test_points_alone_cannot_raise_a_level_and_next_level_needs_are_listed(db, env):
    w = worker(db, env["grid"])
    points.award(db, w.person_id, "award", "big", 300, "奖励", NOW - timedelta(days=10))
    lv = levels.assess(db, w.person_id, NOW)
    assert lv["level"] == 1
    assert lv["next"]["level"] == 2 and any("掌握度" in n for n in lv["next"]["needs"])
    assert not any("积分" in n for n in lv["next"]["needs"])


def test_level_needs_both_floors(db, env):
    w = worker(db, env["grid"])
    for topic in ("法律法规", "应急处置"):
        answer_events(db, w.person_id, topic, right=12, wrong=1, start=NOW - timedelta(days=5))
    assert levels.assess(db, w.person_id, NOW)["level"] == 1  # able, but no points
    points.award(db, w.person_id, "award", "a", 65, "奖励", NOW - timedelta(days=3))
    lv = levels.assess(db, w.person_id, NOW)
    assert lv["level"] >= 3 and levels.current_level(db, w.person_id) == lv["level"]
    # points older than 90 days no longer count
    assert levels.assess(db, w.person_id, NOW + timedelta(days=120))["level"] == 1


def test_worker_portrait_mastery_weak_topics_and_five_of_seven_streak(db, env):
    w = worker(db, env["grid"])
    for d in (0, 1, 2, 4, 6):
        answer_events(db, w.person_id, "法律法规", right=2, wrong=0, start=NOW - timedelta(days=d))
    answer_events(db, w.person_id, "应急处置", right=0, wrong=6, start=NOW - timedelta(days=20))
    p = portraits.worker(db, w, w.person_id, NOW)
    assert p["streak"] == {"active_days_last_7": 5, "text": "近 7 天有 5 天参与学习"}
    by = {t["topic"]: t for t in p["topics"]}
    assert by["法律法规"]["mastery"] > 70 > by["应急处置"]["mastery"]
    assert by["疫情防控"]["mastery"] is None
    assert p["weak_topics"] == ["应急处置"]
    assert p["level"]["level"] == 1 and p["history"]["days"]


def test_recent_answers_weigh_more_than_old_ones(db, env):
    a, b = worker(db, env["grid"], "先错后对"), worker(db, env["grid"], "先对后错")
    answer_events(db, a.person_id, "法律法规", 0, 5, start=NOW - timedelta(days=30))
    answer_events(db, a.person_id, "法律法规", 5, 0, start=NOW - timedelta(days=1))
    answer_events(db, b.person_id, "法律法规", 5, 0, start=NOW - timedelta(days=30))
    answer_events(db, b.person_id, "法律法规", 0, 5, start=NOW - timedelta(days=1))
    ma = portraits.worker(db, a, a.person_id, NOW)["topics"]
    mb = portraits.worker(db, b, b.person_id, NOW)["topics"]
    law = [t["topic"] for t in ma].index("法律法规")
    assert ma[law]["mastery"] > mb[law]["mastery"]


def test_unit_portrait_matrix_weakest_topics_and_training_with_jurisdiction(db, env):
    ws = [worker(db, env["grid"], f"w{i}") for i in range(3)]
    for w in ws:
        answer_events(db, w.person_id, "疫情防控", 1, 5, start=NOW - timedelta(days=2))
        answer_events(db, w.person_id, "服务群众", 5, 1, start=NOW - timedelta(days=2))
    t = trainer(db, env["district"])
    u = portraits.unit(db, t, env["district"].id, NOW)
    assert u["workers"] == 3 and u["participation"]["rate"] == 1.0
    assert u["weakest_topics"][0]["topic"] == "疫情防控"
    assert "疫情防控" in u["suggested_training"][0] and "测试街道" in u["suggested_training"][0]
    assert [r["unit"] for r in u["matrix"]] == ["测试街道"]
    with pytest.raises(Forbidden):
        portraits.unit(db, trainer(db, env["other"]), env["district"].id, NOW)
    with pytest.raises(Forbidden):
        portraits.worker(db, trainer(db, env["other"]), ws[0].person_id, NOW)


def test_answering_faster_than_the_rate_limit_is_refused(db, env):
    w = worker(db, env["grid"])
    items = practice.start_daily(db, w, NOW)["items"]
    for _ in range(60):
        try:
            practice.answer(db, w, items[0]["item_id"], "A", NOW)
        except Exception as exc:  # noqa: BLE001 - only the rate limit matters here
            assert not isinstance(exc, RateLimited)
    with pytest.raises(RateLimited):
        practice.answer(db, w, items[1]["item_id"], "A", NOW)
