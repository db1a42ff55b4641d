"""Mini-program and DingTalk login against the fake platform servers."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from models.identity import Identity, IdentityKind, Person
from tests.helpers import Api, make_person


def test_wechat_login_creates_a_citizen_and_keeps_session_key_on_the_server(client, db, platforms) -> None:
    wechat, _ = platforms
    wechat.add_code("code-1", "openid-1", "union-1")
    r = Api(client).post("/auth/wechat", json={"code": "code-1"})
    assert r.status_code == 200, r.json
    data = r.json["data"]
    assert data["new_account"] is True
    assert data["roles"] == ["citizen"]
    assert "session_key" not in json.dumps(r.json)
    assert Api(client, data["token"]).get("/auth/me").json["data"]["person_id"] == data["person_id"]
    assert wechat.calls("/sns/jscode2session")[0]["query"]["js_code"] == "code-1"


def test_second_login_with_same_openid_reuses_the_account(client, db, platforms) -> None:
    wechat, _ = platforms
    wechat.add_code("a", "openid-2")
    wechat.add_code("b", "openid-2")
    first = Api(client).post("/auth/wechat", json={"code": "a"}).json["data"]
    second = Api(client).post("/auth/wechat", json={"code": "b"}).json["data"]
    assert second["person_id"] == first["person_id"]
    assert second["new_account"] is False
    assert db.scalar(select(func.count()).select_from(Person)) == 1


@pytest.mark.parametrize(
    ("errcode", "status", "code"),
    [
        (40029, 400, "invalid_code"),
        (45011, 429, "platform_rate_limited"),
        (40226, 403, "platform_user_blocked"),
    ],
)
def test_platform_error_codes_map_to_clear_api_errors(client, db, platforms, errcode, status, code) -> None:
    wechat, _ = platforms
    wechat.fail_next("/sns/jscode2session", errcode, "error")
    r = Api(client).post("/auth/wechat", json={"code": "whatever"})
    assert r.status_code == status
    assert r.json["error"]["code"] == code
    assert r.json["error"]["details"]["errcode"] == errcode
    assert db.scalar(select(func.count()).select_from(Person)) == 0


def test_unknown_code_from_the_platform_is_invalid_code(client, db, platforms) -> None:
    r = Api(client).post("/auth/wechat", json={"code": "never-issued"})
    assert r.status_code == 400
    assert r.json["error"]["code"] == "invalid_code"


def test_dingtalk_login_needs_a_bound_userid(client, db, platforms) -> None:
    _, ding = platforms
    ding.add_code("dcode", "user-001")
    r = Api(client).post("/auth/dingtalk", json={"code": "dcode"})
    assert r.status_code == 403
    assert r.json["error"]["code"] == "identity_not_bound"


def test_dingtalk_login_after_binding(client, db, platforms, app) -> None:
    _, ding = platforms
    worker = make_person(db, "grid_worker")
    app_key = app.extensions["zhizhi"].settings.dingtalk["app_key"]
    db.add(Identity(person_id=worker.id, kind=IdentityKind.dingtalk, app_id=app_key, external_id="user-002"))
    db.flush()
    ding.add_code("dcode2", "user-002")
    r = Api(client).post("/auth/dingtalk", json={"code": "dcode2"})
    assert r.status_code == 200, r.json
    assert r.json["data"]["person_id"] == worker.id
