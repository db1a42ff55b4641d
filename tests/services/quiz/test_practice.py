from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.errors import Conflict, Forbidden, ValidationFailed
from models.quiz import AnswerEvent, PracticeItem, QuestionStatus, QuestionVersion, ReviewCard
from services.quiz import bank, points, practice
from tests.services.quiz.factories import NOW, make_bank, org_tree, worker


def right_answer(db, item_id: int) -> str:
    item = db.get(PracticeItem, item_id)
    return "/".join(bank.answer_keys(db.get(QuestionVersion, item.version_id)))


def wrong_answer(db, item_id: int) -> str:
    item = db.get(PracticeItem, item_id)
    v = db.get(QuestionVersion, item.version_id)
    keys = bank.options_per_part(v)
    return "/".join(next(k for k in ks if k != a) for ks, a in zip(keys, bank.answer_keys(v), strict=True))


@pytest.fixture
def setup(db):
    make_bank(db)
    tree = org_tree(db)
    return worker(db, tree["grid"])


def test_daily_set_has_five_unanswered_items_and_repeats_on_second_call(db, setup):
    first = practice.start_daily(db, setup, NOW)
    again = practice.start_daily(db, setup, NOW + timedelta(hours=3))
    assert len(first["items"]) == 5
    assert [i["item_id"] for i in first["items"]] == [i["item_id"] for i in again["items"]]
    for item in first["items"]:
        assert "answer" not in item["question"] and "explanation" not in item["question"]
        assert "result" not in item


def test_answer_returns_correctness_explanation_and_points(db, setup):
    item = practice.start_daily(db, setup, NOW)["items"][0]
    out = practice.answer(db, setup, item["item_id"], right_answer(db, item["item_id"]), NOW)
    assert out["result"]["correct"] is True and out["result"]["points_awarded"] == 1
    assert out["result"]["explanation"]
    with pytest.raises(Conflict) as exc:
        practice.answer(db, setup, item["item_id"], "A", NOW)
    assert exc.value.code == "already_answered"


def test_correct_answer_after_daily_cap_records_practice_with_zero_points_and_reason(db, setup):
    points.award(db, setup.person_id, "practice", "earlier", 5, "此前练习", NOW)  # cap 5/day reached
    item = practice.start_daily(db, setup, NOW)["items"][0]
    out = practice.answer(db, setup, item["item_id"], right_answer(db, item["item_id"]), NOW)
    row = db.get(PracticeItem, item["item_id"])
    assert row.correct is True and row.answered_at == NOW
    assert row.points_awarded == 0 and "今日 5/5" in row.points_note
    assert out["result"]["points_awarded"] == 0 and out["result"]["points_note"] == row.points_note
    assert points.balance_sql(db, setup.person_id) == 5


def test_wrong_answer_is_reviewed_first_when_due_and_not_repeated_before(db, setup):
    items = practice.start_daily(db, setup, NOW)["items"]
    wrong = items[0]
    practice.answer(db, setup, wrong["item_id"], wrong_answer(db, wrong["item_id"]), NOW)
    card = db.scalar(select(ReviewCard).where(ReviewCard.person_id == setup.person_id))
    assert card is not None and card.due_at > NOW
    qids_day1 = {i["question"]["question_id"] for i in items}
    day2 = practice.start_daily(db, setup, NOW + timedelta(days=1))["items"]
    due = [i for i in day2 if i["reason"] == "due"]
    assert [i["question"]["question_id"] for i in due] == [wrong["question"]["question_id"]]
    others = {i["question"]["question_id"] for i in day2 if i["reason"] != "due"}
    assert not others & qids_day1  # nothing else from yesterday comes back within 7 days


def test_unseen_questions_come_from_the_weakest_topic_first(db, setup):
    from models.quiz import AnswerEvent, Question, QuestionTopic, Topic

    rows = db.execute(
        select(Question.id, Topic.name)
        .join(QuestionTopic, QuestionTopic.question_id == Question.id)
        .join(Topic, Topic.id == QuestionTopic.topic_id)
        .order_by(Question.id)
    ).all()
    first_of = {}
    for qid, topic in rows:
        first_of.setdefault(topic, qid)
    for n, (topic, qid) in enumerate(first_of.items()):
        v = bank.current(db, bank.get(db, qid))
        ok = topic != "应急处置"
        db.add(
            AnswerEvent(
                person_id=setup.person_id,
                question_id=qid,
                version_id=v.id,
                correct=ok,
                score=float(ok),
                source="attempt",
                source_id=n,
                answered_at=NOW - timedelta(days=30),
            )
        )
    db.flush()
    items = practice.start_daily(db, setup, NOW)["items"]
    assert items[0]["reason"] == "weak" and items[0]["question"]["topics"] == ["应急处置"]


def test_someone_elses_item_and_retired_question_and_bad_choice_are_refused(db, setup):
    tree_other = worker(db, None, "别人")
    item = practice.start_daily(db, setup, NOW)["items"][0]
    with pytest.raises(Forbidden):
        practice.answer(db, tree_other, item["item_id"], "A", NOW)
    with pytest.raises(ValidationFailed):
        practice.answer(db, setup, item["item_id"], "Z", NOW)
    bank.get(db, item["question"]["question_id"]).status = QuestionStatus.retired
    with pytest.raises(Conflict) as exc:
        practice.answer(db, setup, item["item_id"], "A", NOW)
    assert exc.value.code == "question_retired"
    assert db.get(PracticeItem, item["item_id"]).answered_at is None


def test_chat_flow_serves_one_question_at_a_time_until_done(db, setup):
    seen = []
    for _ in range(5):
        nxt = practice.next_question(db, setup, NOW)
        seen.append(nxt["item"]["item_id"])
        practice.answer(db, setup, nxt["item"]["item_id"], right_answer(db, nxt["item"]["item_id"]), NOW)
    done = practice.next_question(db, setup, NOW)
    assert done["item"] is None and done["progress"] == "5/5" and done["correct"] == 5
    assert len(set(seen)) == 5


def test_another_set_after_the_day_is_done_still_counts_toward_the_daily_cap(db, setup):
    """Practice is unlimited (再来一组); the reward stays capped at 5 a day."""
    with pytest.raises(Conflict) as exc:
        practice.more(db, setup, NOW)  # today's set first
    assert exc.value.code == "practice_pending"
    first = practice.start_daily(db, setup, NOW)["items"]
    for item in first:
        practice.answer(db, setup, item["item_id"], right_answer(db, item["item_id"]), NOW)
    extra = practice.more(db, setup, NOW + timedelta(minutes=5))
    assert extra["round"] == 2 and len(extra["items"]) == 5
    assert [i["position"] for i in extra["items"]] == [6, 7, 8, 9, 10]
    assert not {i["question"]["question_id"] for i in extra["items"]} & {
        i["question"]["question_id"] for i in first
    }
    assert all("result" not in i for i in extra["items"])
    item_id = extra["items"][0]["item_id"]
    out = practice.answer(db, setup, item_id, right_answer(db, item_id), NOW + timedelta(minutes=6))
    assert out["result"]["correct"] and out["result"]["points_awarded"] == 0
    assert out["result"]["points_note"] == "每日一练积分已达上限（今日 5/5），本次不计分"
    assert db.scalar(select(AnswerEvent.id).where(AnswerEvent.source_id == item_id)) is not None
    assert points.balance_sql(db, setup.person_id) == 5
    with pytest.raises(Conflict):
        practice.more(db, setup, NOW + timedelta(minutes=7))  # this set is not done yet
