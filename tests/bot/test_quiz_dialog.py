"""每日一练 entirely in chat (WeChat safe mode and DingTalk), 积分/排行, duplicate retries."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

pytest.importorskip("services.quiz.practice")

from models.quiz import PointEntry, PracticeItem, QuestionVersion
from services.auth import new_binding_code
from services.quiz import bank
from tests.services.quiz.factories import make_bank, org_tree, worker


def _answers(db, person_id: int, right: bool) -> list[str]:
    items = db.scalars(
        select(PracticeItem).where(PracticeItem.person_id == person_id).order_by(PracticeItem.position)
    ).all()
    out = []
    for item in items:
        v = db.get(QuestionVersion, item.version_id)
        keys = bank.answer_keys(v)
        if not right:
            opts = bank.options_per_part(v)
            keys = [next(k for k in ks if k != a) for ks, a in zip(opts, keys, strict=True)]
        out.append("/".join(keys).lower())
    return out


@pytest.fixture
def bound_worker(db):
    make_bank(db)
    tree = org_tree(db)
    actor = worker(db, tree["grid"])
    code, _ = new_binding_code(db, actor.person_id, None)
    db.flush()
    return actor, code


def _points(db, person_id: int) -> int:
    return db.scalar(
        select(func.coalesce(func.sum(PointEntry.delta), 0)).where(PointEntry.person_id == person_id)
    )


def test_grid_worker_completes_daily_practice_over_wechat_safe_mode(wx, db, bound_worker, run_jobs):
    actor, code = bound_worker
    assert "绑定成功" in wx.text("o_worker", f"绑定 {code}").text
    first = wx.text("o_worker", "每日一练")
    assert "第 1/5 题" in first.text and "A." in first.text
    answers = _answers(db, actor.person_id, right=True)
    wrong = _answers(db, actor.person_id, right=False)
    assert "没能识别" in wx.text("o_worker", "不知道").text  # re-prompt, question repeated
    replies = []
    for n, ans in enumerate(answers):
        replies.append(wx.text("o_worker", wrong[n] if n == 4 else ans).text)
    for n, text in enumerate(replies[:4]):
        assert "回答正确" in text and "解析" in text and f"第 {n + 2}/5 题" in text
    assert "回答错误" in replies[4] and "正确答案" in replies[4]
    assert "今日练习完成" in replies[4] and "答对 4/5 题，获得 4 积分" in replies[4]
    assert _points(db, actor.person_id) == 4
    mine = wx.text("o_worker", "积分").text
    assert "累计积分：4" in mine and "4/5" in mine
    board = wx.slow("o_worker", "排行", run_jobs)  # a slow command: answered by a job
    assert "第 1/" in board and "社区" in board and "街道" in board
    assert "1. " in board and " 4 分" in board
    assert "今天的练习已经完成" in wx.text("o_worker", "每日一练").text


def test_grid_worker_completes_daily_practice_over_dingtalk(dt, db, bound_worker):
    actor, code = bound_worker
    assert "绑定成功" in dt.text("staff_w", f"绑定 {code}").text
    assert "第 1/5 题" in dt.text("staff_w", "每日一练").text
    for ans in _answers(db, actor.person_id, right=True):
        last = dt.text("staff_w", ans.upper())
    assert "答对 5/5 题，获得 5 积分" in last.text
    assert "累计积分：5" in dt.text("staff_w", "积分").text


def test_same_answer_msgid_three_times_awards_points_once_and_replies_once(wx, db, platforms, bound_worker):
    actor, code = bound_worker
    wx.text("o_retry", f"绑定 {code}")
    wx.text("o_retry", "每日一练")
    ans = _answers(db, actor.person_id, right=True)[0]
    replies = [wx.text("o_retry", ans, msg_id=880001) for _ in range(3)]
    assert len({r.text for r in replies}) == 1 and "回答正确" in replies[0].text
    assert "第 2/5 题" in replies[0].text
    assert _points(db, actor.person_id) == 1
    assert db.scalar(select(func.count()).select_from(PracticeItem).where(
        PracticeItem.person_id == actor.person_id, PracticeItem.answered_at.is_not(None))) == 1  # fmt: skip
    assert platforms[0].messages("custom", "o_retry") == []  # nothing sent besides the passive reply


def test_cancel_leaves_practice_and_resume_continues(wx, db, bound_worker):
    actor, code = bound_worker
    wx.text("o_cancel", f"绑定 {code}")
    wx.text("o_cancel", "每日一练")
    wx.text("o_cancel", _answers(db, actor.person_id, right=True)[0])
    assert "已取消" in wx.text("o_cancel", "取消").text
    assert "第 2/5 题" in wx.text("o_cancel", "每日一练").text


def test_citizen_cannot_use_daily_practice(wx, db):
    from tests.helpers import make_person

    person = make_person(db, "citizen")
    code, _ = new_binding_code(db, person.id, None)
    wx.text("o_citizen", f"绑定 {code}")
    assert "仅对网格员" in wx.text("o_citizen", "每日一练").text
    assert "每日一练" not in wx.text("o_citizen", "帮助").text


def test_unbound_user_gets_binding_hint_for_daily_practice(wx):
    assert "还没有绑定" in wx.text("o_nobody", "每日一练").text


def test_question_answered_in_the_form_meanwhile_moves_the_chat_on(wx, db, bound_worker):
    from services.quiz import practice

    actor, code = bound_worker
    wx.text("o_form", f"绑定 {code}")
    wx.text("o_form", "每日一练")
    first = db.scalars(
        select(PracticeItem).where(PracticeItem.person_id == actor.person_id).order_by(PracticeItem.position)
    ).first()
    practice.answer(db, actor, first.id, _answers(db, actor.person_id, right=True)[0])
    db.flush()
    text = wx.text("o_form", "A").text
    assert "已在小程序中作答" in text and "第 2/5 题" in text
    assert _points(db, actor.person_id) == 1


def test_the_slow_ranking_over_dingtalk_answers_empty_and_then_by_work_notification(
    dt, db, platforms, bound_worker, run_jobs
):
    _actor, code = bound_worker
    assert "绑定成功" in dt.text("staff_rank", f"绑定 {code}").text
    res = dt.text("staff_rank", "排行")
    assert res.status == 200 and res.body == {}
    run_jobs()
    (sent,) = [m for m in platforms[1].delivered if m["userid"] == "staff_rank"]
    assert "积分排行" in sent["msg"]["text"]["content"]


def test_another_set_in_chat_counts_toward_the_daily_cap(wx, db, bound_worker):
    """再来一组 after the day's five: new questions, and a right answer past the cap earns
    nothing, with the reason."""
    actor, code = bound_worker
    wx.text("o_more", f"绑定 {code}")
    assert "请先完成再来一组" in wx.text("o_more", "再来一组").text  # the day's set not yet done
    wx.text("o_more", "每日一练")
    for ans in _answers(db, actor.person_id, right=True):
        last = wx.text("o_more", ans).text
    assert "获得 5 积分" in last and "再来一组" in last
    first_day_ids = set(
        db.scalars(select(PracticeItem.question_id).where(PracticeItem.person_id == actor.person_id))
    )

    more = wx.text("o_more", "再来一组").text
    assert "再来一组，共 5 题" in more and "第 6/10 题" in more
    right = _answers(db, actor.person_id, right=True)
    assert len(right) == 10
    new_ids = set(
        db.scalars(select(PracticeItem.question_id).where(PracticeItem.person_id == actor.person_id))
    )
    assert len(new_ids - first_day_ids) == 5  # no question of the day repeated
    reply = wx.text("o_more", right[5]).text
    assert "回答正确" in reply and "积分 +" not in reply and "上限" in reply
    assert _points(db, actor.person_id) == 5


def test_api_portrait_and_chat_show_the_same_stored_level(wx, client, db, bound_worker):
    """The quarterly (stored) level is the level everywhere; what today's data would reach
    is shown only as progress. Here the stored level is 3 while fresh data reaches 1."""
    from models.identity import Person
    from models.quiz import WorkerLevel
    from tests.helpers import Api, token_for
    from tests.services.quiz.factories import NOW

    actor, code = bound_worker
    db.add(WorkerLevel(person_id=actor.person_id, level=3, rules_version="2026-01", computed_at=NOW))
    db.flush()
    api = Api(client, token_for(db, db.get(Person, actor.person_id)))
    lv = api.get("/quiz/me/level").json["data"]
    assert (lv["level"], lv["stars"]) == (3, "★★★")
    assert lv["progress"]["reachable_level"] == 1 and lv["progress"]["label"] == "升级进度"
    portrait = api.get(f"/quiz/portraits/workers/{actor.person_id}").json["data"]
    assert portrait["level"]["level"] == 3
    assert "绑定成功" in wx.text("o_worker", f"绑定 {code}").text
    assert "等级：★★★\n" in wx.text("o_worker", "积分").text + "\n"
