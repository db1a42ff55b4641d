"""Trainer views over the API: one worker's attempts (keyset pages, jurisdiction), the
full competition leaderboard as .xlsx and CSV, and the paper/competition refusals."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from core.db import utcnow
from models.identity import OrgLevel
from models.quiz import Attempt, AttemptStatus, Competition, CompetitionStatus, Paper
from services.quiz import exports
from tests.helpers import Api, make_org, make_person, token_for, valid_id_number
from tests.services.quiz.factories import make_bank, org_tree

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def env(db, client):
    ids = make_bank(db)
    tree = org_tree(db)
    street2 = make_org(db, "第二街道", OrgLevel.street, tree["district"])
    tree["grid2"] = make_org(
        db, "第二网格", OrgLevel.grid, make_org(db, "第二社区", OrgLevel.community, street2)
    )
    w = make_person(db, "grid_worker", org=tree["grid"], name="周网格")
    people = {
        "t": make_person(db, "trainer", org=tree["district"], name="沈培训"),
        "t_street": make_person(db, "trainer", org=tree["street"], name="街道培训"),
        "t_other": make_person(db, "trainer", org=tree["other"], name="陆培训"),
    }
    apis = {k: Api(client, token_for(db, p)) for k, p in people.items()}
    return {"ids": ids, "tree": tree, "worker": w, "w": Api(client, token_for(db, w)), **apis}


def _paper(env, **kw) -> int:
    body = {"title": "测试卷", "mode": "fixed", "question_ids": env["ids"][:3], "duration_seconds": 600, **kw}
    r = env["t"].post("/quiz/papers", body)
    assert r.status_code == 201, r.json
    return r.json["data"]["paper_id"]


def _competition(env, paper_id: int, start, end, **kw) -> int:
    body = {
        "title": "五月比武",
        "paper_id": paper_id,
        "org_unit_id": env["tree"]["district"].id,
        "starts_at": start.isoformat(),
        "ends_at": end.isoformat(),
        **kw,
    }
    r = env["t"].post("/quiz/competitions", body)
    assert r.status_code == 201, r.json
    return r.json["data"]["competition_id"]


def test_trainer_pages_through_a_workers_attempts_newest_first(db, env):
    w, t = env["w"], env["t"]
    pid = _paper(env, attempts_allowed=3)
    done = []
    for _ in range(2):
        aid = w.post(f"/quiz/papers/{pid}/attempts").json["data"]["attempt_id"]
        assert w.post(f"/quiz/attempts/{aid}/submit", {"answers": []}).status_code == 200
        done.append(aid)
    now = utcnow()
    cid = _competition(env, _paper(env, title="比武卷"), now - timedelta(minutes=5), now + timedelta(hours=1))
    entry = w.post(f"/quiz/competitions/{cid}/entry").json["data"]["attempt_id"]
    assert w.post(f"/quiz/attempts/{entry}/submit", {"answers": []}).status_code == 200

    url = f"/quiz/workers/{env['worker'].id}/attempts"
    first = t.get(url, query_string={"limit": 2}).json["data"]
    assert first["name"] == "周网格" and first["next_cursor"]
    assert [i["attempt_id"] for i in first["items"]] == [entry, done[1]]
    comp_row, plain_row = first["items"]
    assert comp_row["competition_title"] == "五月比武" and comp_row["status"] == "submitted"
    assert comp_row["results_published"] is False and comp_row["result"] is None  # board not final yet
    assert plain_row["paper_title"] == "测试卷" and plain_row["result"]["max_marks"] == 3.0
    rest = t.get(url, query_string={"cursor": first["next_cursor"], "limit": 2}).json["data"]
    assert [i["attempt_id"] for i in rest["items"]] == [done[0]] and rest["next_cursor"] is None
    assert t.get(url, query_string={"cursor": "nonsense"}).status_code == 422


def test_cross_tenant_worker_attempts_need_jurisdiction_over_the_worker(db, env):
    url = f"/quiz/workers/{env['worker'].id}/attempts"
    r = env["t_other"].get(url)
    assert r.status_code == 403 and r.json["error"]["code"] == "out_of_jurisdiction"
    assert env["w"].get(url).status_code == 403  # workers have no trainer view, not even their own
    assert env["t_street"].get(url).status_code == 200  # the worker's street
    assert env["t"].get("/quiz/workers/999999/attempts").json["error"]["code"] == "person_not_found"
    # A trainer's own attempts, as for portraits, even when they live outside their grant.
    me = make_person(db, "trainer", org=env["tree"]["other"], name="外区培训")
    me.org_unit_id = env["tree"]["grid"].id
    db.flush()
    own = Api(env["w"].client, token_for(db, me)).get(f"/quiz/workers/{me.id}/attempts")
    assert own.status_code == 200 and own.json["data"]["items"] == [], own.json


def _board(db, env, n: int, freeze_after: int | None = None) -> tuple[int, list]:
    """A closed competition with ``n`` ranked workers (rank i has 100 - i marks), the
    first three in the second street; rows written directly, as grading would."""
    now = utcnow()
    start, end = now - timedelta(hours=3), now - timedelta(hours=1)
    freeze = {"freeze_at": (start + timedelta(minutes=90)).isoformat()} if freeze_after is not None else {}
    cid = _competition(env, _paper(env, title="导出卷"), start, end, **freeze)
    comp = db.get(Competition, cid)
    people = []
    for i in range(n):
        grid = env["tree"]["grid2"] if i < 3 else env["tree"]["grid"]
        name = "=HYPERLINK(1)" if i == 5 else f"网格员{i:03d}"
        extra = {"id_number": valid_id_number(i), "mobile": f"1380000{i:04d}"} if i == 0 else {}
        p = make_person(db, "grid_worker", org=grid, name=name, **extra)
        late = freeze_after is not None and i == freeze_after
        at = start + timedelta(minutes=100 if late else 10, seconds=i)
        db.add(
            Attempt(
                paper_id=comp.paper_id,
                person_id=p.id,
                competition_id=cid,
                status=AttemptStatus.submitted,
                started_at=at - timedelta(minutes=5),
                deadline_at=at + timedelta(minutes=5),
                submitted_at=at,
                marks=100 - i,
                max_marks=100,
                answered=100,
                correct=100 - i,
                accuracy_bp=(100 - i) * 100,
                elapsed_ms=300000,
            )
        )
        people.append(p)
    db.flush()
    return cid, people


def test_leaderboard_export_has_every_row_as_xlsx_and_as_csv_with_a_bom(db, env):
    cid, people = _board(db, env, 205)
    db.get(Competition, cid).status = CompetitionStatus.finalized
    db.flush()
    t = env["t"]
    assert (
        t.get(f"/quiz/competitions/{cid}/leaderboard", query_string={"limit": 200}).json["data"]["total"]
        == 205
    )

    r = t.get(f"/quiz/competitions/{cid}/leaderboard.xlsx")
    assert r.status_code == 200 and r.mimetype == XLSX
    disposition = r.headers["Content-Disposition"]
    assert f"competition-{cid}-leaderboard-final.xlsx" in disposition and "filename*=UTF-8''" in disposition
    wb = load_workbook(io.BytesIO(r.data))
    rows = list(wb["排行榜"].iter_rows(values_only=True))
    assert list(rows[0]) == exports.COLUMNS and len(rows) == 206
    assert [row[0] for row in rows[1:]] == list(range(1, 206))
    assert [row[1] for row in rows[1:]] == [p.id for p in people]
    assert rows[1][2:6] == ("网格员000", "第二街道/第二社区/第二网格", "1星", 100)
    assert rows[6][2] == "'=HYPERLINK(1)"  # never run as a formula
    about = dict(wb["说明"].iter_rows(values_only=True))
    assert about["成绩状态"] == "最终成绩" and about["人数"] == 205

    c = t.get(f"/quiz/competitions/{cid}/leaderboard.csv")
    assert c.status_code == 200 and c.mimetype == "text/csv" and c.data.startswith(b"\xef\xbb\xbf")
    text = c.data.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == exports.COLUMNS and len(table) == 206
    assert [int(row[0]) for row in table[1:]] == list(range(1, 206)) and table[1][2] == "网格员000"
    assert people[0].mobile not in text and people[0].id_number not in text  # no personal numbers


def test_cross_tenant_leaderboard_export_is_limited_to_the_jurisdiction(db, env):
    cid, people = _board(db, env, 8, freeze_after=4)
    street = env["t_street"].get(f"/quiz/competitions/{cid}/leaderboard.csv")
    assert street.status_code == 200
    table = list(csv.reader(io.StringIO(street.data.decode("utf-8-sig"))))
    # the street trainer sees their street's workers with their overall ranks; before the
    # results are published the export is the pre-freeze board (rank 5 submitted later)
    expected = [(4, people[3].id), (5, people[5].id), (6, people[6].id), (7, people[7].id)]
    assert [(int(r[0]), int(r[1])) for r in table[1:]] == expected
    r = env["t_other"].get(f"/quiz/competitions/{cid}/leaderboard.xlsx")
    assert r.status_code == 403 and r.json["error"]["code"] == "out_of_jurisdiction"
    assert env["w"].get(f"/quiz/competitions/{cid}/leaderboard.csv").status_code == 403
    assert env["t"].get("/quiz/competitions/999999/leaderboard.csv").status_code == 404


def test_a_second_competition_on_a_paper_is_a_422_and_writes_nothing(db, env):
    now = utcnow()
    pid = _paper(env, title="比武卷")
    _competition(env, pid, now + timedelta(days=1), now + timedelta(days=1, hours=2))
    body = {
        "title": "六月比武",
        "paper_id": pid,
        "org_unit_id": env["tree"]["street"].id,
        "starts_at": (now + timedelta(days=30)).isoformat(),
        "ends_at": (now + timedelta(days=30, hours=2)).isoformat(),
    }
    r = env["t"].post("/quiz/competitions", body)
    assert r.status_code == 422 and r.json["error"]["code"] == "paper_used_by_competition"
    assert "五月比武" in r.json["error"]["message"] and "paper_id" in r.json["error"]["fields"]
    assert db.scalar(select(func.count()).select_from(Competition)) == 1


def test_a_fixed_paper_with_a_retired_question_is_a_422_and_writes_nothing(db, env):
    retired = env["ids"][1]
    assert env["t"].post(f"/quiz/questions/{retired}/status", {"status": "retired"}).status_code == 200
    body = {"title": "含停用题", "mode": "fixed", "question_ids": [env["ids"][0], retired]}
    r = env["t"].post("/quiz/papers", body)
    assert r.status_code == 422 and r.json["error"]["code"] == "question_not_active"
    assert str(retired) in r.json["error"]["fields"]["question_ids"]
    assert r.json["error"]["details"] == {"inactive": [retired]}
    assert db.scalar(select(func.count()).select_from(Paper)) == 0
