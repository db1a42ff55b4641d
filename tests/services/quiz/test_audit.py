"""Trainer point adjustments and question bank changes leave audit rows (who, what,
before/after); refused or replayed calls leave none."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.errors import Forbidden, ValidationFailed
from models.platform import AuditEntry
from models.quiz import QuestionStatus
from services.quiz import bank, points
from tests.helpers import Api, make_person, token_for
from tests.services.quiz.factories import NOW, org_tree, single, trainer, worker


def _audit(db, action: str) -> list[AuditEntry]:
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_point_adjustments_are_audited_once_with_the_balance_before_and_after(db):
    tree = org_tree(db)
    w, t, outsider = worker(db, tree["grid"]), trainer(db, tree["district"]), trainer(db, tree["other"])
    points.award(db, w.person_id, "practice", "p1", 4, "练习", NOW)
    points.adjust(db, t, w.person_id, 3, "走访表现突出", "r-1", NOW)
    points.adjust(db, t, w.person_id, 3, "走访表现突出", "r-1", NOW)  # a retry: no second row
    points.adjust(db, t, w.person_id, -2, "重复计分扣减", "r-2", NOW + timedelta(minutes=1))
    with pytest.raises(Forbidden):
        points.adjust(db, outsider, w.person_id, 1, "越权", "r-3", NOW)
    with pytest.raises(ValidationFailed):
        points.adjust(db, t, w.person_id, 0, "零分", "r-4", NOW)
    (award,) = _audit(db, "quiz.points.award")
    (correction,) = _audit(db, "quiz.points.correction")
    assert (award.actor_id, award.object_type, award.object_id) == (t.person_id, "person", str(w.person_id))
    assert award.data["delta"] == 3 and award.data["reason"] == "走访表现突出" and award.data["ref"] == "r-1"
    assert award.data["balance"] == {"before": 4, "after": 7}
    assert correction.data["delta"] == -2 and correction.data["balance"] == {"before": 7, "after": 5}
    assert award.data["entry_id"] != correction.data["entry_id"]
    assert len(list(db.scalars(select(AuditEntry)))) == 2


def test_question_create_edit_and_status_changes_are_audited_with_before_and_after(db):
    tree = org_tree(db)
    t = trainer(db, tree["district"])
    q = bank.create(db, t, single("网格员每月走访几次？", "服务群众", answer="B"), NOW)
    edited = single("网格员每月至少走访几次？", "服务群众", answer="C", difficulty=4)
    bank.edit(db, t, q.id, edited, NOW + timedelta(minutes=1))
    bank.set_status(db, t, q.id, QuestionStatus.retired, NOW + timedelta(minutes=2))
    bank.set_status(db, t, q.id, QuestionStatus.retired, NOW + timedelta(minutes=3))  # no change
    (created,) = _audit(db, "quiz.question.create")
    (edit,) = _audit(db, "quiz.question.edit")
    (status,) = _audit(db, "quiz.question.status")
    for row in (created, edit, status):
        assert (row.actor_id, row.object_type, row.object_id) == (t.person_id, "quiz_question", str(q.id))
    assert created.data["version"] == 1 and created.data["topics"] == ["服务群众"]
    assert edit.data["version"] == {"before": 1, "after": 2}
    changes = edit.data["changes"]
    assert changes["answer"] == {"before": "B", "after": "C"}
    assert changes["stem"] == {"before": "网格员每月走访几次？", "after": "网格员每月至少走访几次？"}
    assert changes["difficulty"] == {"before": 3, "after": 4}
    assert "topics" not in changes and "explanation" in changes
    assert status.data == {"status": {"before": "active", "after": "retired"}}


def test_a_refused_edit_writes_no_audit_row(db):
    tree = org_tree(db)
    t, w = trainer(db, tree["district"]), worker(db, tree["grid"])
    q = bank.create(db, t, single("改题型", "法律法规"), NOW)
    with pytest.raises(ValidationFailed):
        bank.edit(db, t, q.id, single("答案越界", "法律法规", answer="E"), NOW)
    with pytest.raises(Forbidden):
        bank.edit(db, w, q.id, single("网格员不能改题", "法律法规"), NOW)
    assert _audit(db, "quiz.question.edit") == []


def test_admins_read_the_quiz_audit_rows_over_the_api(db, client):
    tree = org_tree(db)
    t = make_person(db, "trainer", org=tree["district"], name="沈培训")
    w = make_person(db, "grid_worker", org=tree["grid"], name="周网格")
    admin = make_person(db, "admin", name="管理员")
    trainer_api = Api(client, token_for(db, t))
    body = {"person_id": w.id, "delta": 2, "reason": "表彰", "ref": "api-1"}
    assert trainer_api.post("/quiz/points/adjustments", body).status_code == 201
    rows = Api(client, token_for(db, admin)).get(
        "/admin/audit", query_string={"object_type": "person", "object_id": str(w.id)}
    )
    (row,) = rows.json["data"]["items"]
    assert row["action"] == "quiz.points.award" and row["actor_id"] == t.id
    assert row["data"]["balance"] == {"before": 0, "after": 2}
