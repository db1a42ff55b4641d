"""Cursor pagination walks every row once, newest first."""

from __future__ import annotations

from models.platform import AuditEntry
from tests.helpers import Api, make_person, token_for


def test_cursor_pages_cover_all_rows_without_overlap(client, db) -> None:
    admin = make_person(db, "admin")
    for i in range(7):
        db.add(AuditEntry(actor_id=admin.id, action="test", object_type="thing", object_id=str(i), data={}))
    db.flush()
    api = Api(client, token_for(db, admin))
    seen, cursor = [], None
    while True:
        r = api.get("/admin/audit", query_string={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        seen += [item["object_id"] for item in r.json["data"]["items"]]
        cursor = r.json["data"]["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(i) for i in reversed(range(7))]


def test_bad_cursor_and_limit_are_validation_errors(client, db) -> None:
    api = Api(client, token_for(db, make_person(db, "admin")))
    r = api.get("/admin/audit", query_string={"cursor": "!!!"})
    assert r.status_code == 422 and r.json["error"]["fields"] == {"cursor": "分页游标无效"}
    r = api.get("/admin/audit", query_string={"limit": 1000})
    assert r.status_code == 422 and "limit" in r.json["error"]["fields"]


def test_only_admins_read_the_audit_log(client, db) -> None:
    r = Api(client, token_for(db, make_person(db, "trainer"))).get("/admin/audit")
    assert r.status_code == 403


def test_quiz_lists_refuse_a_bad_cursor_with_a_validation_error(client, db) -> None:
    worker = Api(client, token_for(db, make_person(db, "grid_worker")))
    trainer = Api(client, token_for(db, make_person(db, "trainer")))
    for api, path in ((worker, "/quiz/me/points/history"), (trainer, "/quiz/questions")):
        for bad in ("abc", "!!!", "InRleHQi"):  # not base64, not base64, a JSON string
            r = api.get(path, query_string={"cursor": bad})
            assert r.status_code == 422, (path, bad, r.json)
            assert r.json["error"]["fields"] == {"cursor": "分页游标无效"}
