"""The API contract: envelope, errors, validation, size limit, tokens, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.db import utcnow
from models.identity import AuthToken, BindingCode
from models.platform import IdempotencyRecord
from services.auth import hash_password
from tests.helpers import Api, make_person, token_for


def _count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


@pytest.fixture
def worker(db):
    return make_person(db, "grid_worker", name="周网格")


def test_success_is_wrapped_in_the_envelope(client, db, worker) -> None:
    r = Api(client, token_for(db, worker)).get("/auth/me")
    assert r.status_code == 200
    assert r.json["ok"] is True
    assert r.json["data"]["name"] == "周网格"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"person_id": "abc"}', "application/json", 422, "validation_error"),
        (b'{"person_id": 1, "extra": true}', "application/json", 422, "validation_error"),
        (b"[1, 2]", "application/json", 422, "validation_error"),
        (b"person_id=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_bad_bodies_get_4xx_envelope_and_write_nothing(
    client,
    db,
    worker,
    body,
    content_type,
    status,
    code,
) -> None:
    before = _count(db, BindingCode)
    r = client.post(
        "/api/v1/auth/binding-codes",
        data=body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {token_for(db, worker)}"},
    )
    assert r.status_code == status
    assert r.json["ok"] is False
    assert r.json["error"]["code"] == code
    assert r.json["error"]["message"]
    assert _count(db, BindingCode) == before


def test_validation_errors_name_each_field_in_chinese(client, db) -> None:
    r = Api(client).post("/auth/password", json={"username": 5, "unexpected": 1})
    fields = r.json["error"]["fields"]
    assert fields == {"username": "应为文本", "password": "必填项", "unexpected": "不允许的字段"}


def test_oversized_body_is_refused_with_413(client, db, worker, app) -> None:
    limit = app.extensions["zhizhi"].settings.max_content_length
    big = b'{"person_id": 1, "pad": "' + b"x" * limit + b'"}'
    before = _count(db, BindingCode)
    r = client.post(
        "/api/v1/auth/binding-codes",
        data=big,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token_for(db, worker)}"},
    )
    assert r.status_code == 413
    assert r.json["error"]["code"] == "payload_too_large"
    assert _count(db, BindingCode) == before


@pytest.mark.parametrize("length", ["²", "1²", "-1", "abc"])
def test_a_content_length_that_is_not_ascii_digits_is_never_a_500(client, db, worker, length) -> None:
    before = _count(db, BindingCode)
    r = client.post(
        "/api/v1/auth/binding-codes",
        data=b'{"person_id": 1}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {token_for(db, worker)}"},
        environ_overrides={"CONTENT_LENGTH": length},
    )
    assert 400 <= r.status_code < 500, r.data
    assert _count(db, BindingCode) == before


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer zz_unknown"])
def test_missing_or_bad_token_is_401(client, db, header) -> None:
    headers = {"Authorization": header} if header else {}
    r = client.post("/api/v1/auth/binding-codes", json={}, headers=headers)
    assert r.status_code == 401
    assert r.json["error"]["code"] in ("unauthenticated", "invalid_token")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_401_and_writes_nothing(client, db, worker) -> None:
    token = token_for(db, worker)
    row = db.scalar(select(AuthToken).where(AuthToken.person_id == worker.id))
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.flush()
    before = _count(db, BindingCode)
    r = Api(client, token).post("/auth/binding-codes", json={})
    assert r.status_code == 401
    assert r.json["error"]["code"] == "token_expired"
    assert _count(db, BindingCode) == before


def test_logout_revokes_the_token_at_once(client, db, worker) -> None:
    api = Api(client, token_for(db, worker))
    assert api.get("/auth/me").status_code == 200
    assert api.post("/auth/logout").status_code == 200
    r = api.get("/auth/me")
    assert r.status_code == 401
    assert r.json["error"]["code"] == "invalid_token"


def test_unknown_api_route_and_method_use_the_envelope(client, db) -> None:
    assert client.get("/api/v1/nowhere").json["error"]["code"] == "not_found"
    r = client.delete("/api/v1/auth/me")
    assert r.status_code == 405
    assert r.json["error"]["code"] == "method_not_allowed"


def test_idempotent_replay_returns_the_identical_response(client, db, worker) -> None:
    api = Api(client, token_for(db, worker))
    first = api.post("/auth/binding-codes", json={}, headers={"Idempotency-Key": "k-1"})
    again = api.post("/auth/binding-codes", json={}, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(db, BindingCode) == 1
    assert _count(db, IdempotencyRecord) == 1


def test_same_key_with_another_body_is_refused(client, db, worker) -> None:
    api = Api(client, token_for(db, worker))
    api.post("/auth/binding-codes", json={}, headers={"Idempotency-Key": "k-2"})
    r = api.post("/auth/binding-codes", json={"person_id": worker.id}, headers={"Idempotency-Key": "k-2"})
    assert r.status_code == 422
    assert r.json["error"]["code"] == "idempotency_key_reused"
    assert _count(db, BindingCode) == 1


def test_idempotency_keys_are_scoped_per_person(client, db, worker) -> None:
    other = make_person(db, "grid_worker")
    a = Api(client, token_for(db, worker)).post(
        "/auth/binding-codes", json={}, headers={"Idempotency-Key": "same"}
    )
    b = Api(client, token_for(db, other)).post(
        "/auth/binding-codes", json={}, headers={"Idempotency-Key": "same"}
    )
    assert a.json["data"]["code"] != b.json["data"]["code"]
    assert _count(db, BindingCode) == 2


def test_password_lockout_after_repeated_failures(client, db, app) -> None:
    from models.identity import StaffLogin

    person = make_person(db, "officer")
    db.add(StaffLogin(person_id=person.id, username="guard", password_hash=hash_password("Right@2026")))
    db.flush()
    api = Api(client)
    limit = app.extensions["zhizhi"].settings.login_max_failures
    for _ in range(limit):
        r = api.post("/auth/password", json={"username": "guard", "password": "wrong"})
        assert r.status_code == 401
        assert r.json["error"]["code"] == "invalid_credentials"
    r = api.post("/auth/password", json={"username": "guard", "password": "Right@2026"})
    assert r.status_code == 429
    assert r.json["error"]["code"] == "account_locked"


def test_password_login_issues_a_working_token(client, db) -> None:
    from models.identity import StaffLogin

    person = make_person(db, "trainer", name="沈培训")
    db.add(StaffLogin(person_id=person.id, username="t1", password_hash=hash_password("Right@2026")))
    db.flush()
    r = Api(client).post("/auth/password", json={"username": "t1", "password": "Right@2026"})
    assert r.status_code == 200
    assert r.json["data"]["roles"] == ["trainer"]
    me = Api(client, r.json["data"]["token"]).get("/auth/me")
    assert me.json["data"]["person_id"] == person.id


def test_unknown_user_and_wrong_password_look_the_same(client, db) -> None:
    r = Api(client).post("/auth/password", json={"username": "nobody", "password": "x"})
    assert r.status_code == 401
    assert r.json["error"] == {"code": "invalid_credentials", "message": "用户名或密码错误"}


def test_logout_reaches_a_process_that_only_has_the_shared_cache(client, db, worker) -> None:
    from core.auth import token_cache

    api = Api(client, token_for(db, worker))
    assert api.get("/auth/me").status_code == 200  # cached here and in the shared store
    assert api.post("/auth/logout").status_code == 200
    token_cache.clear()  # another process: nothing local, the shared store decides
    assert api.get("/auth/me").status_code == 401


def test_a_new_role_grant_is_seen_at_once_through_the_shared_cache(client, db, worker) -> None:
    from sqlalchemy import event

    from core.auth import token_cache
    from models.identity import RoleGrant

    api = Api(client, token_for(db, worker))
    assert "trainer" not in api.get("/auth/me").json["data"]["roles"]
    token_cache.clear()
    statements: list[str] = []
    engine = client.application.extensions["zhizhi"].db.engine
    listen = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        me = api.get("/auth/me")
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert me.status_code == 200
    assert not any("auth_tokens" in s for s in statements)  # the token came from the shared cache
    with client.application.app_context():  # as every request, job and command runs
        db.add(RoleGrant(person_id=worker.id, role="trainer", org_unit_id=worker.org_unit_id))
        db.commit()
    token_cache.clear()
    assert "trainer" in api.get("/auth/me").json["data"]["roles"]
