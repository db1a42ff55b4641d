from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.errors import Forbidden
from models.quiz import PointEntry
from services.quiz import cache, points
from tests.services.quiz.factories import NOW, org_tree, trainer, worker


def test_same_source_awards_once(db):
    tree = org_tree(db)
    w = worker(db, tree["grid"])
    a = points.award(db, w.person_id, "award", "x1", 3, "奖励", NOW)
    b = points.award(db, w.person_id, "award", "x1", 3, "奖励", NOW)
    assert (a.granted, b.granted, b.duplicate) == (3, 3, True)
    assert db.scalar(select(func.count()).select_from(PointEntry)) == 1


def test_daily_cap_counts_in_shanghai_days(db):
    tree = org_tree(db)
    w = worker(db, tree["grid"])
    # 23:30 Shanghai on 3 March = 15:30 UTC
    late = NOW.replace(hour=15, minute=30)
    for n in range(5):
        assert points.award(db, w.person_id, "practice", f"i{n}", 1, "练习", late).granted == 1
    capped = points.award(db, w.person_id, "practice", "i5", 1, "练习", late)
    assert capped.granted == 0 and capped.entry_id is None
    assert "今日 5/5" in capped.note
    # 00:30 Shanghai next day is a new day
    assert points.award(db, w.person_id, "practice", "i6", 1, "练习", late + timedelta(hours=1)).granted == 1
    caps = points.caps_today(db, w.person_id, late)
    assert caps[0]["text"] == "每日一练 今日 5/5"


def test_weekly_cap_for_tests_partially_grants(db):
    tree = org_tree(db)
    w = worker(db, tree["grid"])
    assert points.award(db, w.person_id, "test", "p1", 4, "测试", NOW).granted == 4
    got = points.award(db, w.person_id, "test", "p2", 4, "测试", NOW + timedelta(days=2))
    assert got.granted == 1 and got.note == "测试本次计 1 分（本周已达上限 5 分）"
    none = points.award(db, w.person_id, "test", "p3", 2, "测试", NOW + timedelta(days=3))
    assert none.granted == 0 and none.note == "测试积分已达上限（本周 5/5），本次不计分"


def test_trainer_correction_is_a_new_entry_and_needs_jurisdiction(db):
    tree = org_tree(db)
    w = worker(db, tree["grid"])
    t = trainer(db, tree["district"])
    outsider = trainer(db, tree["other"])
    points.award(db, w.person_id, "award", "a", 5, "奖励", NOW)
    points.adjust(db, t, w.person_id, -2, "重复计分扣减", "fix-1", NOW)
    points.adjust(db, t, w.person_id, -2, "重复计分扣减", "fix-1", NOW)
    assert points.balance_sql(db, w.person_id) == 3
    with pytest.raises(Forbidden):
        points.adjust(db, outsider, w.person_id, 1, "奖励", "x", NOW)


def test_redis_ranks_follow_commits_and_equal_sql(app, db):
    tree = org_tree(db)
    ws = [worker(db, tree["grid"], f"w{i}") for i in range(4)]
    r = cache.client()
    points.rebuild(db, r)
    for i, w in enumerate(ws):
        points.award(db, w.person_id, "award", "a", (i % 3) + 1, "奖励", NOW)
    db.commit()
    for w in ws:
        for scope in ("all", tree["district"].id):
            assert points.standing(db, w.person_id, scope) == points.standing_sql(db, w.person_id, scope)
    # a rolled-back award never reaches the cache
    points.award(db, ws[0].person_id, "award", "b", 10, "奖励", NOW)
    db.rollback()
    assert points.standing(db, ws[0].person_id)["balance"] == 1
    r.flushdb()  # cache lost: rebuilt from the ledger on the next read
    assert points.standing(db, ws[2].person_id) == points.standing_sql(db, ws[2].person_id)
