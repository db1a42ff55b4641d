"""core.fastlane: the hot routes answer exactly as the Flask routes do, and the lane
steps aside whenever it could not."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from core.fastlane import compile_rule
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.services.passes.builders import make_world, visitor_body

SCAN = "/api/v1/passes/gate/scan"


@pytest.fixture
def lane(app):
    return app.extensions["zhizhi"].lane


@pytest.fixture
def world(app, db):
    return make_world(db, app, datetime.now(UTC))


@pytest.fixture
def issued(app, db, client, world):
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post(f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(3), ring=1))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["data"]["passes"][0]["token"]


def _scan_body(qr: str, nonce: str | None = None) -> dict:
    return {
        "qr": qr,
        "nonce": nonce or uuid.uuid4().hex,
        "scanned_at": datetime.now(UTC).isoformat(),
        "direction": "in",
    }


def _both(client, lane, monkeypatch, send):
    """(lane answer, Flask answer) of ``send()``, with the count of lane-served requests."""
    before = lane.served
    first = send()
    served = lane.served - before
    monkeypatch.setattr(lane, "enabled", False)
    second = send()
    monkeypatch.setattr(lane, "enabled", True)
    return first, second, served


def _same(a, b) -> None:
    assert a.status_code == b.status_code
    assert a.get_data() == b.get_data()
    assert a.headers.get("Content-Type") == b.headers.get("Content-Type")
    assert a.headers.get("Content-Length") == b.headers.get("Content-Length")
    assert a.headers.get("WWW-Authenticate") == b.headers.get("WWW-Authenticate")


def test_the_hot_routes_are_on_the_lane(lane):
    routes = lane.routes()
    assert "POST /api/v1/passes/gate/scan" in routes
    assert "POST /bot/wechat" in routes
    assert any(r.startswith("POST /api/v1/quiz/attempts/") for r in routes)


def test_a_scan_is_answered_by_the_lane(db, client, lane, world, issued):
    before = lane.served
    resp = client.post(
        SCAN, json=_scan_body(issued), headers={"Authorization": f"Bearer {world.device_tokens['outer_in']}"}
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["data"]["result"] == "ok"
    assert lane.served == before + 1


@pytest.mark.parametrize(
    "case",
    ["no_token", "bad_token", "wrong_role", "invalid_json", "not_json", "missing_field", "bad_direction"],
)
def test_refusals_are_the_same_bytes_on_the_lane_and_through_flask(
    db, client, lane, world, issued, monkeypatch, case
):
    device = {"Authorization": f"Bearer {world.device_tokens['outer_in']}"}
    citizen = {"Authorization": f"Bearer {token_for(db, make_person(db, 'citizen'))}"}
    body = _scan_body(issued)
    requests = {
        "no_token": dict(json=body),
        "bad_token": dict(json=body, headers={"Authorization": "Bearer nope"}),
        "wrong_role": dict(json=body, headers=citizen),
        "invalid_json": dict(data=b'{"qr": ', content_type="application/json", headers=device),
        "not_json": dict(data=json.dumps(body), content_type="text/plain", headers=device),
        "missing_field": dict(json={k: v for k, v in body.items() if k != "nonce"}, headers=device),
        "bad_direction": dict(json={**body, "direction": "sideways"}, headers=device),
    }
    lane_resp, flask_resp, served = _both(
        client, lane, monkeypatch, lambda: client.post(SCAN, **requests[case])
    )
    assert served == 1
    assert 400 <= lane_resp.status_code < 500
    assert lane_resp.get_json()["ok"] is False
    _same(lane_resp, flask_resp)


def test_an_unexpected_error_is_flasks_500_and_the_session_is_closed(
    app, db, client, lane, world, issued, monkeypatch
):
    from services.passes import gate

    opened = []

    def broken(session_factory, *args, **kwargs):
        session = session_factory()
        session.execute(text("SELECT 1"))
        opened.append(session)
        raise RuntimeError("boom")

    monkeypatch.setattr(gate, "check_json", broken)
    headers = {"Authorization": f"Bearer {world.device_tokens['outer_in']}"}
    lane_resp, flask_resp, served = _both(
        client, lane, monkeypatch, lambda: client.post(SCAN, json=_scan_body(issued), headers=headers)
    )
    assert served == 1
    assert lane_resp.status_code == 500
    assert lane_resp.get_json()["error"]["code"] == "internal_error"
    _same(lane_resp, flask_resp)
    assert len(opened) == 2
    assert not opened[0].in_transaction()  # rolled back and closed by the lane's teardown


def test_the_lane_steps_aside_for_request_hooks(app, db, client, lane, world, issued, monkeypatch):
    seen = []
    monkeypatch.setitem(app.before_request_funcs, None, [lambda: seen.append(1)])
    before = lane.served
    resp = client.post(
        SCAN, json=_scan_body(issued), headers={"Authorization": f"Bearer {world.device_tokens['outer_in']}"}
    )
    assert resp.status_code == 200
    assert seen == [1]
    assert lane.served == before


@pytest.mark.parametrize("kind", ["too_large", "chunked", "bad_length"])
def test_bodies_the_lane_does_not_take_go_to_flask(app, db, client, lane, world, kind):
    headers = {
        "Authorization": f"Bearer {world.device_tokens['outer_in']}",
        "Content-Type": "application/json",
    }
    before = lane.served
    if kind == "too_large":
        resp = client.post(SCAN, data=b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1), headers=headers)
        assert resp.status_code == 413
        assert resp.get_json()["error"]["code"] == "payload_too_large"
    elif kind == "chunked":
        resp = client.post(
            SCAN,
            input_stream=io.BytesIO(b'{"qr": "x"}'),
            headers={**headers, "Transfer-Encoding": "chunked"},
            environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
        )
        assert resp.status_code == 422  # parsed by Flask's path: the fields are missing
    else:
        resp = client.post(SCAN, data=b"{}", headers=headers, environ_overrides={"CONTENT_LENGTH": "1e3"})
        assert resp.status_code < 500
    assert lane.served == before


def test_a_non_ascii_attempt_id_is_routed_by_flask(db, client, lane, monkeypatch):
    before = lane.served
    token = token_for(db, make_person(db, "grid_worker"))
    a, b, served = _both(
        client,
        lane,
        monkeypatch,
        lambda: client.post(
            "/api/v1/quiz/attempts/\u0661\u0662/submit",
            json={"answers": []},
            headers={"Authorization": f"Bearer {token}"},
        ),
    )
    assert served == 0 and lane.served == before
    assert a.status_code == b.status_code < 500


def test_compile_rule_takes_ascii_parameters_only():
    pattern, convert = compile_rule("/api/v1/quiz/attempts/<int:attempt_id>/submit")
    m = pattern.match("/api/v1/quiz/attempts/0042/submit")
    assert m is not None and convert["attempt_id"](m.group("attempt_id")) == 42
    assert pattern.match("/api/v1/quiz/attempts/\u0664\u0662/submit") is None
    assert pattern.match("/api/v1/quiz/attempts/42/submit/") is None
    assert pattern.match("/api/v1/quiz/attempts/-1/submit") is None
    with pytest.raises(ValueError):
        compile_rule("/x/<path:rest>")


def test_fast_lane_can_be_switched_off(test_env):
    from core.app import create_app

    app = create_app({**test_env, "FAST_LANE": "0"})
    try:
        assert app.extensions["zhizhi"].lane is None
        assert app.wsgi_app.__func__ is type(app).wsgi_app  # Flask's own
    finally:
        app.extensions["zhizhi"].db.dispose()


def test_a_response_without_its_length_is_completed_by_werkzeug(client, lane, monkeypatch):
    from flask import Response

    route = (lambda environ: Response([b"ab", b"cd"], content_type="text/plain"), None, (None,))
    monkeypatch.setitem(lane.exact, ("POST", "/api/v1/_lane_probe"), route)
    before = lane.served
    resp = client.post("/api/v1/_lane_probe", data=b"x")
    assert lane.served == before + 1
    assert resp.status_code == 200 and resp.get_data() == b"abcd"
    assert resp.headers["Content-Length"] == "4"
