from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.errors import Conflict, Forbidden, ValidationFailed
from models.identity import OrgLevel
from models.quiz import Attempt, AttemptStatus, Competition, PointEntry, WorkerLevel
from services.quiz import attempts, competitions, leaderboard
from tests.helpers import make_org
from tests.services.quiz.factories import NOW, make_bank, org_tree, trainer, worker
from tests.services.quiz.test_attempts import correct_labels


@pytest.fixture
def env(db):
    ids = make_bank(db)
    tree = org_tree(db)
    t = trainer(db, tree["district"])
    paper = attempts.create_paper(
        db, t, {"title": "比武卷", "mode": "fixed", "question_ids": ids[:6], "duration_seconds": 900}
    )
    comp = competitions.create(
        db,
        t,
        {
            "title": "三月比武",
            "paper_id": paper.id,
            "org_unit_id": tree["district"].id,
            "starts_at": NOW,
            "ends_at": NOW + timedelta(hours=12),
            "freeze_at": NOW + timedelta(hours=11),
        },
    )
    return {"tree": tree, "trainer": t, "comp": comp, "ids": ids}


def play(db, w, comp, start, elapsed_s, n_right, n_wrong=0):
    a = competitions.enter(db, w, comp.id, start)
    right = correct_labels(db, a["attempt_id"])
    answers = right[:n_right]
    for item in right[n_right : n_right + n_wrong]:
        answers.append(
            {
                "position": item["position"],
                "choice": ["A" if item["choice"][0] != "A" else "B"]
                if len(item["choice"]) == 1
                else ["A", "A"],
            }
        )
    attempts.submit(db, w, a["attempt_id"], answers, start + timedelta(seconds=elapsed_s))
    return a["attempt_id"]


def test_ties_rank_by_marks_then_accuracy_then_elapsed_then_submit_time(db, env):
    g = env["tree"]["grid"]
    names = ["甲", "乙", "丙", "丁", "戊"]
    ws = {n: worker(db, g, n) for n in names}
    c = env["comp"]
    play(db, ws["甲"], c, NOW + timedelta(minutes=1), 100, 5)  # 5 marks, 100%
    play(db, ws["乙"], c, NOW + timedelta(minutes=2), 50, 5, n_wrong=1)  # 5 marks, lower accuracy
    play(db, ws["丙"], c, NOW + timedelta(minutes=3), 90, 5)  # same as 甲, faster
    play(db, ws["丁"], c, NOW + timedelta(minutes=4), 100, 5)  # same as 甲, submitted later
    play(db, ws["戊"], c, NOW + timedelta(minutes=5), 10, 6)  # more marks wins
    db.commit()
    expected = [ws[n].person_id for n in ["戊", "丙", "甲", "丁", "乙"]]
    unit = env["tree"]["district"].id
    assert leaderboard.ranked_sql(db, c, unit, "all", "pub") == expected
    assert leaderboard.ranked_redis(db, c, unit, "all", "pub") == expected
    board = competitions.board(db, ws["甲"], c.id, None, "all", 10, NOW + timedelta(hours=1))
    assert [i["person_id"] for i in board["items"]] == expected and board["my_rank"] == 3


def test_one_attempt_window_and_scope_are_enforced(db, env):
    c = env["comp"]
    w = worker(db, env["tree"]["grid"])
    with pytest.raises(Conflict, match="尚未开始"):
        competitions.enter(db, w, c.id, NOW - timedelta(minutes=1))
    play(db, w, c, NOW, 60, 3)
    with pytest.raises(Conflict) as exc:
        competitions.enter(db, w, c.id, NOW + timedelta(hours=1))
    assert exc.value.code == "already_attempted"
    outsider = worker(db, env["tree"]["other_grid"])
    with pytest.raises(Forbidden):
        competitions.enter(db, outsider, c.id, NOW)
    with pytest.raises(Conflict):
        competitions.enter(db, worker(db, env["tree"]["grid"], "晚到"), c.id, NOW + timedelta(hours=12))


def test_board_freezes_then_final_results_and_percentile_points_at_the_end(db, env):
    c = env["comp"]
    ws = [worker(db, env["tree"]["grid"], f"w{i}") for i in range(10)]
    for i, w in enumerate(ws[:9]):
        play(db, w, c, NOW + timedelta(minutes=i), 60 + i, 6 - i % 6)
    late = play(db, ws[9], c, NOW + timedelta(hours=11, minutes=5), 30, 6)  # after the freeze
    db.commit()
    frozen = competitions.board(db, ws[0], c.id, None, "all", 20, NOW + timedelta(hours=11, minutes=30))
    assert frozen["frozen"] and ws[9].person_id not in [i["person_id"] for i in frozen["items"]]
    with pytest.raises(Conflict):
        competitions.finalize(db, c.id, NOW + timedelta(hours=11))
    competitions.finalize(db, c.id, NOW + timedelta(hours=12, seconds=5))  # after the 5 s grace
    competitions.finalize(db, c.id, NOW + timedelta(hours=13))  # idempotent
    db.commit()
    final = competitions.board(db, ws[0], c.id, None, "all", 20, NOW + timedelta(hours=13))
    assert final["final"] and final["items"][0]["person_id"] == ws[9].person_id and late
    pts = [
        db.scalar(
            select(PointEntry.delta).where(
                PointEntry.person_id == pid, PointEntry.source_type == "competition"
            )
        )
        for pid in [i["person_id"] for i in final["items"]]
    ]
    assert pts == [10, 6, 6, 3, 3, 3, 3, 3, 3, 3]
    stats = competitions.item_statistics(db, env["trainer"], c.id)
    assert len(stats) == 6 and all(0 <= s["facility"] <= 1 for s in stats)


def test_500_worker_simulation_redis_board_equals_sql(db, env):
    rng = random.Random(7)
    tree = env["tree"]
    street2 = make_org(db, "第二街道", OrgLevel.street, tree["district"])
    grids = [tree["grid"]]
    for s in (tree["street"], street2):
        for k in range(2):
            comm = make_org(db, f"社区{s.id}-{k}", OrgLevel.community, s)
            grids.append(make_org(db, f"网格{s.id}-{k}", OrgLevel.grid, comm))
    c = env["comp"]
    ws = []
    for i in range(500):
        w = worker(db, rng.choice(grids), f"w{i}")
        db.add(
            WorkerLevel(person_id=w.person_id, level=rng.randint(1, 3), rules_version="t", computed_at=NOW)
        )
        ws.append(w)
    db.flush()
    for i, w in enumerate(ws):
        start = NOW + timedelta(seconds=rng.randint(0, 12 * 3600 - 1000))
        n_right = rng.randint(0, 6)
        n_wrong = rng.randint(0, 6 - n_right)
        play(db, w, c, start, rng.choice([30, 45, 60, 90]), n_right, n_wrong)
        if i % 50 == 0:
            db.commit()
    db.commit()
    units = {tree["district"].id, tree["street"].id, street2.id, tree["community"].id}
    for view in ("pub", "live"):
        for unit in units:
            for bracket in ("all", "L1", "L2", "L3"):
                sql = leaderboard.ranked_sql(db, c, unit, bracket, view)
                assert leaderboard.ranked_redis(db, c, unit, bracket, view) == sql, (view, unit, bracket)
    assert len(leaderboard.ranked_sql(db, c, tree["district"].id, "all", "live")) == 500
    # the cache is disposable: rebuilt from SQL it gives the same board
    from services.quiz import cache

    cache.client().flushdb()
    assert leaderboard.ranked_redis(db, c, tree["district"].id, "all", "live") == leaderboard.ranked_sql(
        db, c, tree["district"].id, "all", "live"
    )


def test_a_competition_paper_cannot_be_taken_as_a_plain_test(db, env):
    """Starting the paper of tomorrow's competition as a plain test would reveal it (and
    its answers after submitting): refused, nothing written."""
    c = env["comp"]
    w = worker(db, env["tree"]["grid"])
    with pytest.raises(Conflict) as exc:
        attempts.start(db, w, c.paper_id, NOW - timedelta(days=1))
    assert exc.value.code == "competition_paper" and "比武" in exc.value.message
    assert db.scalar(select(func.count()).select_from(Attempt)) == 0


def test_the_entry_never_resumes_a_plain_attempt_on_the_same_paper(db, env):
    c = env["comp"]
    w = worker(db, env["tree"]["grid"])
    plain = Attempt(
        paper_id=c.paper_id, person_id=w.person_id, started_at=NOW, deadline_at=NOW + timedelta(minutes=15)
    )
    db.add(plain)  # e.g. left over from before the paper was used for the competition
    db.flush()
    entry = competitions.enter(db, w, c.id, NOW + timedelta(minutes=1))
    assert entry["competition_id"] == c.id and entry["attempt_id"] != plain.id
    again = competitions.enter(db, w, c.id, NOW + timedelta(minutes=2))
    assert again["attempt_id"] == entry["attempt_id"]


def test_a_paper_already_taken_as_a_plain_test_cannot_become_a_competition(db, env):
    t = env["trainer"]
    p = attempts.create_paper(db, t, {"title": "练习卷", "mode": "fixed", "question_ids": env["ids"][6:9]})
    attempts.start(db, worker(db, env["tree"]["grid"]), p.id, NOW)
    spec = {
        "title": "四月比武",
        "paper_id": p.id,
        "org_unit_id": env["tree"]["district"].id,
        "starts_at": NOW + timedelta(days=30),
        "ends_at": NOW + timedelta(days=30, hours=12),
    }
    with pytest.raises(ValidationFailed) as exc:
        competitions.create(db, t, spec)
    assert "paper_id" in exc.value.fields


def test_answers_of_a_competition_attempt_are_shown_only_after_the_window(db, env):
    c = env["comp"]
    w = worker(db, env["tree"]["grid"])
    aid = play(db, w, c, NOW, 60, 6)
    row = db.get(Attempt, aid)
    grace = timedelta(seconds=attempts.get_paper(db, c.paper_id).grace_seconds)
    during = attempts.view(db, row, c.ends_at + grace - timedelta(seconds=1))
    assert all("result" not in i for i in during["items"]) and during["summary"]["correct"] == 6
    assert during["results_at"] == (c.ends_at + grace).isoformat()
    after = attempts.view(db, row, c.ends_at + grace)
    assert all(i["result"]["correct_answer"] and "explanation" in i["result"] for i in after["items"])


def test_finalize_waits_for_the_grace_period_so_a_submit_in_time_counts(db, env):
    t, tree = env["trainer"], env["tree"]
    p = attempts.create_paper(
        db,
        t,
        {"title": "宽限卷", "mode": "fixed", "question_ids": env["ids"][:6], "grace_seconds": 30},
    )
    ends = NOW + timedelta(hours=2)
    c = competitions.create(
        db,
        t,
        {
            "title": "宽限比武",
            "paper_id": p.id,
            "org_unit_id": tree["district"].id,
            "starts_at": NOW,
            "ends_at": ends,
        },
    )
    w = worker(db, tree["grid"])
    a = competitions.enter(db, w, c.id, ends - timedelta(minutes=5))  # deadline = the end of the window
    with pytest.raises(Conflict) as exc:
        competitions.finalize(db, c.id, ends + timedelta(seconds=10), actor=t)
    assert exc.value.code == "competition_in_grace" and "宽限" in exc.value.message
    assert competitions.finalize_due(db, ends + timedelta(seconds=20)) == []  # the sweep waits too
    done = attempts.submit(
        db, w, a["attempt_id"], correct_labels(db, a["attempt_id"]), ends + timedelta(seconds=25)
    )
    assert done["status"] == "submitted"
    assert competitions.finalize_due(db, ends + timedelta(seconds=31)) == [c.id]
    assert db.get(Attempt, a["attempt_id"]).status == AttemptStatus.submitted
    assert db.scalar(select(PointEntry.delta).where(PointEntry.person_id == w.person_id)) == 10


def test_a_submit_after_the_attempt_was_closed_says_the_deadline_passed(db, env):
    c = env["comp"]
    w = worker(db, env["tree"]["grid"])
    a = competitions.enter(db, w, c.id, c.ends_at - timedelta(minutes=1))
    competitions.finalize(db, c.id, c.ends_at + timedelta(minutes=1))
    with pytest.raises(Conflict) as exc:
        attempts.submit(db, w, a["attempt_id"], [], c.ends_at + timedelta(minutes=2))
    assert exc.value.code == "attempt_deadline_passed" and "截止" in exc.value.message


def test_a_paper_serves_one_competition_only(db, env):
    """The first competition publishes the paper's answers; a second one on the same paper
    is refused with a stable code naming paper_id, and nothing is written."""
    c = env["comp"]
    spec = {
        "title": "四月比武",
        "paper_id": c.paper_id,
        "org_unit_id": env["tree"]["street"].id,
        "starts_at": NOW + timedelta(days=30),
        "ends_at": NOW + timedelta(days=30, hours=12),
    }
    with pytest.raises(ValidationFailed) as exc:
        competitions.create(db, env["trainer"], spec)
    assert exc.value.status == 422 and exc.value.code == "paper_used_by_competition"
    assert "三月比武" in exc.value.message and "三月比武" in exc.value.fields["paper_id"]
    assert exc.value.details == {"competition_id": c.id}
    assert db.scalar(select(func.count()).select_from(Competition)) == 1
    fresh = attempts.create_paper(
        db, env["trainer"], {"title": "四月卷", "mode": "fixed", "question_ids": env["ids"][6:9]}
    )
    assert competitions.create(db, env["trainer"], {**spec, "paper_id": fresh.id}).paper_id == fresh.id


def _wrong(labels: str, n_options: int) -> str:
    return next(x for x in ("A", "B", "C", "AB")[: n_options + 1] if x != labels)


@pytest.mark.parametrize(("cbm", "facility"), [(False, 0.5), (True, 0.0)])
def test_facility_of_a_partly_right_scenario_follows_its_marks(db, env, cbm, facility):
    """Without certainty-based marking a scenario with one of two parts right earns half
    its marks, so it counts as half right (it used to count as right); with it, the marks
    are all-or-nothing, so it counts as wrong."""
    scenario, single = env["ids"][-1], env["ids"][0]
    t = env["trainer"]
    p = attempts.create_paper(
        db,
        t,
        {"title": "情景卷", "mode": "fixed", "question_ids": [scenario, single], "certainty_marking": cbm},
    )
    spec = {"title": "情景比武", "paper_id": p.id, "org_unit_id": env["tree"]["district"].id}
    c = competitions.create(db, t, {**spec, "starts_at": NOW, "ends_at": NOW + timedelta(hours=1)})
    w = worker(db, env["tree"]["grid"])
    a = competitions.enter(db, w, c.id, NOW)
    right = {r["position"]: r["choice"] for r in correct_labels(db, a["attempt_id"])}
    pos = next(i["position"] for i in a["items"] if i["question"]["question_id"] == scenario)
    part1, part2 = right[pos]
    answers = [{"position": pos, "choice": [part1, _wrong(part2, 3)], "certainty": 1}]
    attempts.submit(db, w, a["attempt_id"], answers, NOW + timedelta(minutes=5))
    competitions.finalize(db, c.id, NOW + timedelta(hours=2))
    stats = {s["question_id"]: s for s in competitions.item_statistics(db, t, c.id)}
    assert stats[scenario]["facility"] == facility and stats[single]["facility"] == 0.0
