from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.errors import Conflict, Forbidden
from models.quiz import Attempt, AttemptItem, AttemptStatus, PointEntry, QuestionVersion
from services.quiz import attempts, bank
from tests.services.quiz.factories import NOW, make_bank, org_tree, trainer, worker


@pytest.fixture
def env(db):
    ids = make_bank(db)
    tree = org_tree(db)
    t = trainer(db, tree["district"])
    w = worker(db, tree["grid"])
    return {"ids": ids, "tree": tree, "trainer": t, "worker": w}


def paper(db, env, **kw):
    spec = {"title": "三月测试", "mode": "fixed", "question_ids": env["ids"][-6:], "duration_seconds": 600}
    spec.update(kw)
    return attempts.create_paper(db, env["trainer"], spec)


def correct_labels(db, attempt_id: int) -> list[dict]:
    """The right displayed labels, computed from the stored shuffle (what a cheater cannot see)."""
    out = []
    for item in db.scalars(select(AttemptItem).where(AttemptItem.attempt_id == attempt_id)):
        v = db.get(QuestionVersion, item.version_id)
        labels = [
            "".join(sorted(chr(65 + order.index(k)) for k in key))
            for key, order in zip(bank.answer_keys(v), item.option_order, strict=True)
        ]
        out.append({"position": item.position, "choice": labels})
    return out


def test_answers_are_absent_before_submission_and_shown_after(db, env):
    p = paper(db, env)
    started = attempts.start(db, env["worker"], p.id, NOW)
    saved = attempts.save(db, env["worker"], started["attempt_id"], 1, "A", now=NOW)
    resumed = attempts.start(db, env["worker"], p.id, NOW + timedelta(seconds=30))
    for payload in (started, saved, resumed):
        text = json.dumps(payload, ensure_ascii=False)
        assert '"answer"' not in text and "explanation" not in text and '"result"' not in text
    done = attempts.submit(
        db,
        env["worker"],
        started["attempt_id"],
        correct_labels(db, started["attempt_id"]),
        NOW + timedelta(seconds=60),
    )
    assert all("explanation" in i["result"] for i in done["items"])
    assert done["summary"]["marks"] == done["summary"]["max_marks"]


def test_options_are_shuffled_per_attempt_and_graded_through_the_shuffle(db, env):
    p = paper(db, env, attempts_allowed=30)
    orders = set()
    for n in range(6):
        a = attempts.start(db, env["worker"], p.id, NOW + timedelta(hours=n))
        item = db.scalar(
            select(AttemptItem).where(AttemptItem.attempt_id == a["attempt_id"], AttemptItem.position == 1)
        )
        orders.add(tuple(item.option_order[0]))
        done = attempts.submit(
            db,
            env["worker"],
            a["attempt_id"],
            correct_labels(db, a["attempt_id"]),
            NOW + timedelta(hours=n, minutes=1),
        )
        assert done["summary"]["correct"] == 6
    assert len(orders) > 1


def test_submission_after_deadline_plus_grace_is_refused_and_nothing_written(db, env):
    p = paper(db, env, duration_seconds=60, grace_seconds=5)
    a = attempts.start(db, env["worker"], p.id, NOW)
    db.commit()
    with pytest.raises(Conflict) as exc:
        attempts.submit(
            db, env["worker"], a["attempt_id"], [{"position": 1, "choice": "A"}], NOW + timedelta(seconds=66)
        )
    assert exc.value.code == "attempt_deadline_passed"
    db.rollback()
    row = db.get(Attempt, a["attempt_id"])
    assert row.status == AttemptStatus.in_progress and row.submitted_at is None
    # inside the grace period it is still accepted, and elapsed stops at the deadline
    ok = attempts.submit(db, env["worker"], a["attempt_id"], [], NOW + timedelta(seconds=64))
    assert ok["status"] == "submitted" and db.get(Attempt, a["attempt_id"]).elapsed_ms == 60000


def test_attempt_is_submitted_once_and_test_points_awarded_once(db, env):
    p = paper(db, env)
    a = attempts.start(db, env["worker"], p.id, NOW)
    attempts.submit(
        db, env["worker"], a["attempt_id"], correct_labels(db, a["attempt_id"]), NOW + timedelta(minutes=1)
    )
    with pytest.raises(Conflict) as exc:
        attempts.submit(db, env["worker"], a["attempt_id"], [], NOW + timedelta(minutes=2))
    assert exc.value.code == "attempt_already_submitted"
    assert db.scalar(select(func.sum(PointEntry.delta))) == 5
    with pytest.raises(Conflict) as exc:
        attempts.start(db, env["worker"], p.id, NOW + timedelta(minutes=3))
    assert exc.value.code == "attempts_exhausted"


def test_highest_grading_adds_only_the_improvement(db, env):
    p = paper(db, env, attempts_allowed=3, grading="highest")
    a1 = attempts.start(db, env["worker"], p.id, NOW)
    attempts.submit(
        db,
        env["worker"],
        a1["attempt_id"],
        correct_labels(db, a1["attempt_id"])[:3],
        NOW + timedelta(minutes=1),
    )
    a2 = attempts.start(db, env["worker"], p.id, NOW + timedelta(minutes=2))
    attempts.submit(
        db, env["worker"], a2["attempt_id"], correct_labels(db, a2["attempt_id"]), NOW + timedelta(minutes=3)
    )
    deltas = sorted(db.scalars(select(PointEntry.delta)))
    assert sum(deltas) == 5 and len(deltas) == 2


def test_someone_elses_attempt_is_refused(db, env):
    p = paper(db, env)
    a = attempts.start(db, env["worker"], p.id, NOW)
    other = worker(db, env["tree"]["grid"], "别人")
    with pytest.raises(Forbidden):
        attempts.save(db, other, a["attempt_id"], 1, "A", now=NOW)


def test_blueprint_paper_draws_per_topic(db, env):
    p = paper(
        db,
        env,
        mode="blueprint",
        question_ids=[],
        blueprint=[{"topic": "法律法规", "count": 2}, {"topic": "应急处置", "count": 1}],
    )
    a = attempts.start(db, env["worker"], p.id, NOW)
    topics = [i["question"]["topics"][0] for i in a["items"]]
    assert sorted(topics) == ["应急处置", "法律法规", "法律法规"]


def test_overdue_attempt_is_graded_from_saved_answers(db, env):
    p = paper(db, env, duration_seconds=60)
    a = attempts.start(db, env["worker"], p.id, NOW)
    right = correct_labels(db, a["attempt_id"])[0]
    attempts.save(db, env["worker"], a["attempt_id"], 1, right["choice"], now=NOW + timedelta(seconds=10))
    assert attempts.close_overdue(db, NOW + timedelta(minutes=5)) == 1
    row = db.get(Attempt, a["attempt_id"])
    assert row.status == AttemptStatus.expired and row.correct == 1


def test_a_paper_is_only_for_workers_inside_its_unit(db, env):
    p = paper(db, env)
    assert p.org_unit_id == env["tree"]["district"].id  # the trainer's jurisdiction
    outsider = worker(db, env["tree"]["other_grid"], "外区网格员")
    with pytest.raises(Forbidden) as exc:
        attempts.start(db, outsider, p.id, NOW)
    assert exc.value.code == "paper_out_of_scope"
    assert db.scalar(select(func.count()).select_from(Attempt)) == 0
    assert attempts.start(db, env["worker"], p.id, NOW)["paper_id"] == p.id


def _statements(db, call) -> int:
    """SQL statements ``call`` sends (counted on the engine the test session uses)."""
    from sqlalchemy import event

    engine = db.get_bind().engine
    seen: list[str] = []
    listen = lambda *a: seen.append(a[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return len(seen)


def test_starting_an_attempt_costs_the_same_few_statements_for_5_and_20_questions(db, env):
    """Question versions are loaded for the whole paper at once, not one query per question."""
    counts = {}
    for n in (5, 20):
        p = paper(db, env, title=f"{n} 题", question_ids=env["ids"][:n])
        w = worker(db, env["tree"]["grid"], f"网格员{n}")
        db.expire_all()  # nothing preloaded in the identity map, as in a fresh request
        counts[n] = _statements(db, lambda p=p, w=w: attempts.start(db, w, p.id, NOW))
        resumed = _statements(db, lambda p=p, w=w: attempts.start(db, w, p.id, NOW + timedelta(minutes=1)))
        counts[f"resume {n}"] = resumed
    assert counts["resume 5"] == counts["resume 20"], counts
    if db.get_bind().dialect.name == "postgresql":
        assert counts[5] == counts[20], counts  # the items in one multi-row INSERT
        assert counts[20] <= 10, counts  # was 34 for 5 and 94 for 20 questions
    else:  # SQLite (the embedded mode) inserts the items row by row; the loading is still batched
        assert counts[20] - counts[5] <= 15 and counts[5] <= 15, counts


@pytest.mark.parametrize("status", ["draft", "retired"])
def test_a_fixed_paper_refuses_draft_and_retired_questions(db, env, status):
    from core.errors import ValidationFailed
    from models.quiz import Paper, QuestionStatus

    bad = env["ids"][:2]
    for qid in bad:
        bank.set_status(db, env["trainer"], qid, QuestionStatus(status))
    with pytest.raises(ValidationFailed) as exc:
        paper(db, env, question_ids=[*bad, env["ids"][2]])
    assert exc.value.status == 422 and exc.value.code == "question_not_active"
    assert str(bad) in exc.value.fields["question_ids"] and exc.value.details == {"inactive": bad}
    assert ("草稿" if status == "draft" else "已停用") in exc.value.message
    assert db.scalar(select(func.count()).select_from(Paper)) == 0
