from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import utcnow
from models.quiz import PointEntry
from services.quiz import attempts, intake
from services.quiz.config import SHANGHAI
from tests.helpers import Api, make_person, token_for
from tests.services.quiz.factories import make_bank, org_tree
from tests.services.quiz.test_attempts import correct_labels
from tests.services.quiz.test_importers import GIFT

SECRET_KEYS = {"answer", "explanation", "result", "correct_answer", "summary"}


def keys_in(obj: Any) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | set().union(*(keys_in(v) for v in obj.values()))
    if isinstance(obj, list):
        return set().union(*(keys_in(v) for v in obj)) if obj else set()
    return set()


@pytest.fixture
def env(db, client):
    ids = make_bank(db)
    tree = org_tree(db)
    w = make_person(db, "grid_worker", org=tree["grid"], name="周网格")
    t = make_person(db, "trainer", org=tree["district"], name="沈培训")
    t_other = make_person(db, "trainer", org=tree["other"], name="陆培训")
    return {
        "ids": ids,
        "tree": tree,
        "worker": w,
        "w": Api(client, token_for(db, w)),
        "t": Api(client, token_for(db, t)),
        "t_other": Api(client, token_for(db, t_other)),
    }


def new_paper(env, **kw) -> int:
    body = {
        "title": "测试卷",
        "mode": "fixed",
        "question_ids": env["ids"][-5:],
        "duration_seconds": 600,
        **kw,
    }
    r = env["t"].post("/quiz/papers", body, headers={"Idempotency-Key": f"p-{kw}"})
    assert r.status_code == 201, r.json
    return r.json["data"]["paper_id"]


def test_answers_are_absent_from_every_response_before_submission(db, env):
    w = env["w"]
    responses = [w.post("/quiz/practice/today").json]
    started = w.post(f"/quiz/papers/{new_paper(env)}/attempts").json
    aid = started["data"]["attempt_id"]
    responses += [started, w.get(f"/quiz/attempts/{aid}").json]
    responses.append(
        w.client.put(
            f"/api/v1/quiz/attempts/{aid}/items/1",
            json={"choice": "A"},
            headers={"Authorization": f"Bearer {w.token}"},
        ).json
    )
    responses.append(w.post(f"/quiz/papers/{new_paper(env, title='二')}/attempts").json)
    for body in responses:
        assert body["ok"], body
        assert not keys_in(body["data"]) & SECRET_KEYS, body
    done = w.post(f"/quiz/attempts/{aid}/submit", {"answers": []}).json["data"]
    assert "summary" in done and all("correct_answer" in i["result"] for i in done["items"])


def test_same_attempt_submitted_twice_with_same_key_awards_once(db, env):
    w = env["w"]
    aid = w.post(f"/quiz/papers/{new_paper(env)}/attempts").json["data"]["attempt_id"]
    body = {"answers": correct_labels(db, aid)}
    first = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "sub-1"})
    again = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "sub-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json == first.json
    other_key = w.post(f"/quiz/attempts/{aid}/submit", body, headers={"Idempotency-Key": "sub-2"})
    assert other_key.status_code == 409 and other_key.json["error"]["code"] == "attempt_already_submitted"
    # The worker's next read records an accepted write-behind submit first.
    assert w.get("/quiz/me/points").json["data"]["balance"] == 5
    assert db.scalar(select(func.count()).select_from(PointEntry)) == 1


def test_submission_after_deadline_and_grace_is_refused_over_the_api(db, env):
    w = env["w"]
    pid = new_paper(env, duration_seconds=60)
    aid = w.post(f"/quiz/papers/{pid}/attempts").json["data"]["attempt_id"]
    row = attempts.own_attempt(db, _actor(db, env["worker"].id), aid)
    row.started_at -= timedelta(minutes=5)
    row.deadline_at = utcnow() - timedelta(seconds=6)
    db.flush()
    # The attempt's sheet (deadline included) is cached in Redis when it starts; this test
    # moves the deadline rather than the clock, so the cache has to forget the old one.
    env["w"].client.application.extensions["zhizhi"].redis.delete(intake.state_key(aid))
    r = w.post(f"/quiz/attempts/{aid}/submit", {"answers": []})
    assert r.status_code == 409 and r.json["error"]["code"] == "attempt_deadline_passed"
    assert "截止" in r.json["error"]["message"]
    assert w.get(f"/quiz/attempts/{aid}").json["data"]["status"] != "submitted"


def _actor(db, person_id):
    from core.auth import load_actor

    return load_actor(db, person_id)


def test_trainer_cannot_read_another_districts_portraits(db, env):
    wid, district = env["worker"].id, env["tree"]["district"].id
    assert env["t"].get(f"/quiz/portraits/workers/{wid}").status_code == 200
    assert env["t"].get(f"/quiz/portraits/units/{district}").status_code == 200
    for path in (f"/quiz/portraits/workers/{wid}", f"/quiz/portraits/units/{district}"):
        r = env["t_other"].get(path)
        assert r.status_code == 403 and r.json["error"]["code"] == "out_of_jurisdiction"
    mine = env["w"].get(f"/quiz/portraits/workers/{wid}").json["data"]
    assert mine["streak"]["text"] == "近 7 天有 0 天参与学习" and len(mine["topics"]) == 8
    other = make_person(db, "grid_worker", org=env["tree"]["grid"], name="同事")
    assert env["w"].get(f"/quiz/portraits/workers/{other.id}").status_code == 403


def test_practice_over_the_api_reports_today_cap(db, env):
    w = env["w"]
    items = w.post("/quiz/practice/today").json["data"]["items"]
    q = items[0]["question"]  # any kind may come first: answer in its own shape
    parts = q.get("parts") or [{"options": q["options"]}]
    choice = "/".join(part["options"][0]["key"] for part in parts)
    r = w.post(f"/quiz/practice/items/{items[0]['item_id']}/answer", {"choice": choice})
    assert r.status_code == 200 and "explanation" in r.json["data"]["result"]
    assert r.json["data"]["caps"][0]["text"].startswith("每日一练 今日")
    bad = w.post(f"/quiz/practice/items/{items[1]['item_id']}/answer", {"choice": 5})
    assert bad.status_code == 422
    more = w.post("/quiz/practice/more")  # 再来一组 only once today's set is done
    assert more.status_code == 409 and more.json["error"]["details"] == {"remaining": len(items) - 1}


def test_import_over_the_api_dry_run_then_real_then_again(db, env):
    t = env["t"]
    tpl = t.get("/quiz/imports/template.xlsx")
    assert tpl.status_code == 200 and tpl.data[:2] == b"PK"
    body = {"filename": "law.gift", "content_base64": base64.b64encode(GIFT.encode()).decode()}
    dry = t.post("/quiz/imports", {**body, "dry_run": True}).json["data"]
    assert dry["would_add"] == 3 and dry["errors"] == []
    assert t.post("/quiz/imports", body).json["data"]["added"] == 3
    assert t.post("/quiz/imports", body).json["data"]["added"] == 0
    bad = t.post(
        "/quiz/imports",
        {
            "filename": "x.gift",
            "content_base64": base64.b64encode("好题 {=对 ~错}\n\n坏题没有答案\n".encode()).decode(),
            "topics": ["法律法规"],
        },
    )
    assert bad.status_code == 422
    assert bad.json["error"]["details"]["errors"] == [{"line": 3, "reason": "缺少 {…} 答案部分"}]
    assert env["w"].post("/quiz/imports", body).status_code == 403


def test_competition_flow_over_the_api(db, env):
    t, w = env["t"], env["w"]
    now = utcnow()
    pid = new_paper(env)
    c = t.post(
        "/quiz/competitions",
        {
            "title": "比武",
            "paper_id": pid,
            "org_unit_id": env["tree"]["district"].id,
            "starts_at": (now - timedelta(hours=1)).astimezone(SHANGHAI).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    )
    assert c.status_code == 201, c.json
    cid = c.json["data"]["competition_id"]
    plain = w.post(f"/quiz/papers/{pid}/attempts")  # the competition's paper is not a plain test
    assert plain.status_code == 409 and plain.json["error"]["code"] == "competition_paper"
    entry = w.post(f"/quiz/competitions/{cid}/entry").json["data"]
    assert entry["competition_id"] == cid
    assert not keys_in(entry) & SECRET_KEYS
    aid = entry["attempt_id"]
    body, key = {"answers": correct_labels(db, aid)}, {"Idempotency-Key": "comp-1"}
    done = w.post(f"/quiz/attempts/{aid}/submit", body, headers=key)
    assert done.status_code == 200, done.json
    # results (answers, explanations, per-item marks) publish when the window ends:
    # the worker keeps their own total (the leaderboard shows it anyway)
    for shown in (done.json["data"], w.get(f"/quiz/attempts/{aid}").json["data"]):
        assert not keys_in(shown["items"]) & SECRET_KEYS, shown
        assert shown["summary"]["correct"] == len(body["answers"]) and shown["results_at"]
    again = w.post(f"/quiz/attempts/{aid}/submit", body, headers=key)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.data == done.data
    db.commit()
    board = w.get(f"/quiz/competitions/{cid}/leaderboard").json["data"]
    assert board["my_rank"] == 1 and board["items"][0]["marks"] == 6.0
    early = t.post(f"/quiz/competitions/{cid}/finalize")
    assert early.status_code == 409
    assert env["t_other"].post(f"/quiz/competitions/{cid}/finalize").status_code == 403


def test_portrait_pictures_render_through_jobs(app, db, env, run_jobs):
    wid, district = env["worker"].id, env["tree"]["district"].id
    radar = env["w"].post(f"/quiz/portraits/workers/{wid}/picture")
    heat = env["t"].post(f"/quiz/portraits/units/{district}/picture")
    assert radar.status_code == heat.status_code == 202
    outcomes = run_jobs()  # inline dispatch may already have run them
    assert all(o == "done" for _, o in outcomes), outcomes
    for api, made in (
        (env["w"], radar),
        (env["t"], heat),
        (env["t"], radar),
    ):  # the trainer governs the worker
        r = api.get(made.json["data"]["url"].removeprefix("/api/v1"))
        assert r.status_code == 200 and r.mimetype == "image/png" and r.data[:8] == b"\x89PNG\r\n\x1a\n"
    for made in (radar, heat):
        r = env["t_other"].get(made.json["data"]["url"].removeprefix("/api/v1"))
        assert r.status_code == 403 and r.json["error"]["code"] == "out_of_jurisdiction"
    name = radar.json["data"]["url"].rsplit("/", 1)[1]
    stranger = make_person(db, "grid_worker", org=env["tree"]["grid"], name="同格")
    other_url = f"/quiz/portraits/workers/{stranger.id}/picture/{name}"
    assert env["t"].get(other_url).status_code == 404  # a name belongs to its own target only
    # after practising, a new request renders a new picture instead of the day's stale one
    items = env["w"].post("/quiz/practice/today").json["data"]["items"]
    item = next(i for i in items if i["question"]["kind"] != "scenario")  # "A" answers it
    assert env["w"].post(f"/quiz/practice/items/{item['item_id']}/answer", {"choice": "A"}).status_code == 200
    fresh = env["w"].post(f"/quiz/portraits/workers/{wid}/picture").json["data"]
    assert fresh["url"] != radar.json["data"]["url"]
    run_jobs()
    assert env["w"].get(fresh["url"].removeprefix("/api/v1")).data[:4] == b"\x89PNG"


def test_level_and_thresholds_are_published(db, env):
    lv = env["w"].get("/quiz/me/level").json["data"]
    progress = lv["progress"]
    assert lv["level"] == 1 and progress["next"]["level"] == 2 and progress["next"]["needs"]
    th = env["w"].get("/quiz/levels/thresholds").json["data"]
    assert [x["level"] for x in th["levels"]] == [2, 3, 4, 5]
    assert env["w"].get("/openapi.json").status_code in (200, 404)


def test_cross_tenant_leaderboard_and_rank_scope_are_refused(db, env, client):
    t, w, tree = env["t"], env["w"], env["tree"]
    now = utcnow()
    cid = t.post(
        "/quiz/competitions",
        {
            "title": "区内比武",
            "paper_id": new_paper(env),
            "org_unit_id": tree["district"].id,
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    ).json["data"]["competition_id"]
    board = f"/quiz/competitions/{cid}/leaderboard"
    assert w.get(board).status_code == 200 and t.get(board).status_code == 200
    assert w.get(f"{board}?scope_unit_id={tree['street'].id}").status_code == 200
    outsiders = [
        Api(client, token_for(db, make_person(db, "grid_worker", org=tree["other_grid"], name="外区网格"))),
        env["t_other"],
        Api(client, token_for(db, make_person(db, "citizen", name="居民"))),
    ]
    for api in outsiders:
        r = api.get(board)
        assert r.status_code == 403, r.json
    for unit in (tree["other"].id, 10**6, tree["grid"].id):  # another district, none, not a board scope
        r = w.get(f"{board}?scope_unit_id={unit}")
        assert r.status_code == 422 and "scope_unit_id" in r.json["error"]["fields"], r.json
    assert w.get(f"/quiz/me/rank?scope={tree['street'].id}").status_code == 200
    for unit in (tree["other"].id, 10**6):
        r = w.get(f"/quiz/me/rank?scope={unit}")
        assert r.status_code == 422 and "scope" in r.json["error"]["fields"], r.json


def test_a_set_with_an_item_already_answered_names_it_and_writes_nothing(db, env):
    w = env["w"]
    items = w.post("/quiz/practice/today").json["data"]["items"]
    # Items a one-letter choice answers (the set may also hold the bank's scenario item).
    one_letter = [i for i in items if i["question"]["kind"] != "scenario"][:3]
    first, second, third = (i["item_id"] for i in one_letter)
    assert w.post(f"/quiz/practice/items/{first}/answer", {"choice": "A"}).status_code == 200
    r = w.post(
        "/quiz/practice/answers",
        {"answers": [{"item_id": second, "choice": "A"}, {"item_id": first, "choice": "A"}]},
    )
    assert r.status_code == 409 and r.json["error"]["code"] == "already_answered"
    position = one_letter[0]["position"]
    assert r.json["error"]["details"] == {"item_id": first, "position": position, "index": 1}
    assert f"第 {position} 题" in r.json["error"]["message"]
    bad = w.post(
        "/quiz/practice/answers",
        {"answers": [{"item_id": second, "choice": "A"}, {"item_id": third, "choice": "Z"}]},
    )
    assert bad.status_code == 422 and "answers.1.choice" in bad.json["error"]["fields"], bad.json
    today = {i["item_id"]: i["answered"] for i in w.post("/quiz/practice/today").json["data"]["items"]}
    assert [today[first], today[second], today[third]] == [True, False, False]


def test_workers_find_their_competitions_and_trainers_their_papers(db, env):
    """GET /quiz/competitions: the ones a worker can enter (with their own entry) or a
    trainer governs; another district's trainer sees none. GET /quiz/papers: trainers."""
    t, w = env["t"], env["w"]
    now = utcnow()
    pid = new_paper(env, title="比武卷")
    spec = {"org_unit_id": env["tree"]["district"].id}
    windows = {"进行中": (now - timedelta(hours=1), now + timedelta(hours=1)),
               "未开始": (now + timedelta(days=1), now + timedelta(days=1, hours=2))}  # fmt: skip
    ids = {}
    for title, (start, end) in windows.items():
        paper = pid if title == "进行中" else new_paper(env, title="下次比武卷")  # one paper, one competition
        window = {"starts_at": start.isoformat(), "ends_at": end.isoformat()}
        r = t.post("/quiz/competitions", {**spec, **window, "paper_id": paper, "title": title})
        assert r.status_code == 201, r.json
        ids[title] = r.json["data"]["competition_id"]
    entry = w.post(f"/quiz/competitions/{ids['进行中']}/entry").json["data"]

    mine = w.get("/quiz/competitions", query_string={"limit": 1})
    assert mine.status_code == 200
    first = mine.json["data"]
    assert [c["title"] for c in first["items"]] == ["未开始"] and first["next_cursor"]
    rest = w.get("/quiz/competitions", query_string={"cursor": first["next_cursor"]}).json["data"]
    (running,) = rest["items"]
    assert (
        running["phase"] == "open"
        and running["phase_label"] == "进行中"
        and running["paper_title"] == "比武卷"
    )
    assert running["my_attempt"] == {"attempt_id": entry["attempt_id"], "status": "in_progress"}
    assert first["items"][0]["phase"] == "upcoming" and first["items"][0]["my_attempt"] is None
    assert not keys_in(first) & SECRET_KEYS

    assert {c["competition_id"] for c in t.get("/quiz/competitions").json["data"]["items"]} == set(
        ids.values()
    )
    assert env["t_other"].get("/quiz/competitions").json["data"]["items"] == []
    papers = t.get("/quiz/papers").json["data"]["items"]
    assert [(p["paper_id"], p["competition_paper"]) for p in papers if p["paper_id"] == pid] == [(pid, True)]
    assert w.get("/quiz/papers").status_code == 403
    assert w.get("/quiz/competitions", query_string={"limit": 0}).status_code == 422
