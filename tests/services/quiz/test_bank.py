from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.errors import Conflict, Forbidden, ValidationFailed
from models.quiz import PracticeItem, QuestionVersion
from services.quiz import attempts, bank, practice
from tests.services.quiz.factories import NOW, org_tree, single, trainer, worker
from tests.services.quiz.test_attempts import correct_labels


def test_edit_creates_a_version_and_earlier_answers_keep_theirs(db):
    tree = org_tree(db)
    t, w = trainer(db, tree["district"]), worker(db, tree["grid"])
    q = bank.create(db, t, single("网格员每月走访几次？", "服务群众", answer="B"), NOW)
    item = practice.start_daily(db, w, NOW)["items"][0]
    edited = single("网格员每月至少走访几次？", "服务群众", answer="C")
    bank.edit(db, t, q.id, edited, NOW + timedelta(minutes=1))
    assert q.current_version == 2
    out = practice.answer(db, w, item["item_id"], "B", NOW + timedelta(minutes=2))
    assert out["result"]["correct"] is True  # graded against the version that was shown
    row = db.get(PracticeItem, item["item_id"])
    assert db.get(QuestionVersion, row.version_id).number == 1
    assert bank.full_view(q, bank.current(db, q))["answer"] == "C"


def test_duplicate_invalid_and_unauthorised_questions_are_refused(db):
    tree = org_tree(db)
    t, w = trainer(db, tree["district"]), worker(db, tree["grid"])
    bank.create(db, t, single("重复题", "法律法规"), NOW)
    with pytest.raises(Conflict):
        bank.create(db, t, single("重复题", "法律法规"), NOW)
    with pytest.raises(ValidationFailed) as exc:
        bank.create(db, t, single("答案越界", "法律法规", answer="E"), NOW)
    assert "不在选项" in exc.value.message
    with pytest.raises(Forbidden):
        bank.create(db, w, single("网格员不能出题", "法律法规"), NOW)


def test_certainty_based_marking_penalises_confident_wrong_answers(db):
    tree = org_tree(db)
    t, w = trainer(db, tree["district"]), worker(db, tree["grid"])
    qs = [bank.create(db, t, single(f"CBM题{i}", "应急处置", answer="A"), NOW).id for i in range(2)]
    paper = attempts.create_paper(
        db, t, {"title": "CBM", "mode": "fixed", "question_ids": qs, "certainty_marking": True}
    )
    a = attempts.start(db, w, paper.id, NOW)
    right = correct_labels(db, a["attempt_id"])
    wrong_label = "A" if right[1]["choice"][0] != "A" else "B"
    done = attempts.submit(
        db,
        w,
        a["attempt_id"],
        [
            {"position": 1, "choice": right[0]["choice"], "certainty": 3},
            {"position": 2, "choice": wrong_label, "certainty": 3},
        ],
        NOW + timedelta(minutes=1),
    )
    assert done["summary"]["marks"] == 3 - 6 and done["summary"]["max_marks"] == 6


def test_an_edit_sets_the_source_when_given_and_keeps_it_when_omitted(db):
    from dataclasses import replace

    from models.platform import AuditEntry

    tree = org_tree(db)
    t = trainer(db, tree["district"])
    q = bank.create(db, t, replace(single("来源题", "法律法规"), source="《浙江省平安建设条例》"), NOW)
    bank.edit(db, t, q.id, single("来源题（修订）", "法律法规"), NOW + timedelta(minutes=1))
    assert q.source == "《浙江省平安建设条例》"  # omitted: kept
    bank.edit(db, t, q.id, replace(single("来源题（再修订）", "法律法规"), source="培训讲义"), NOW)
    assert q.source == "培训讲义"
    last = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "quiz.question.edit").order_by(AuditEntry.id.desc())
    ).first()
    assert last.data["changes"]["source"] == {"before": "《浙江省平安建设条例》", "after": "培训讲义"}
    bank.edit(db, t, q.id, replace(single("来源题（三修）", "法律法规"), source=""), NOW)
    assert q.source is None
