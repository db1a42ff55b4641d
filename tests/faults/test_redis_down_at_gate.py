"""Redis unreachable while a gate scans: the device gets 503 ``temporarily_unavailable``
(retry with the same nonce, or switch to offline mode), nothing is written half-way,
and once Redis is back the retry with the same nonce is answered and logged once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy import func, select

from models.passes import Alert, Passage, ScanRefusal
from services.passes import gate
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.jobs.test_fault import PrivateRedis
from tests.services.passes.builders import make_world, visitor_body


def _scan(api: Api, device: str, qr: str, nonce: str):
    body = {"qr": qr, "nonce": nonce, "scanned_at": datetime.now(UTC).isoformat(), "direction": "in"}
    return api.post("/passes/gate/scan", body, token=device)


@pytest.fixture
def approved(app, db, client):
    world = make_world(db, app, datetime.now(UTC))
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post(f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(70)))
    assert resp.status_code == 201 and resp.get_json()["data"]["status"] == "approved", resp.get_json()
    return world, api, resp.get_json()["data"]["passes"][0]


def _count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_scan_while_redis_is_down_is_retryable_and_the_retry_logs_one_passage(
    app, db, approved, tmp_path, monkeypatch
) -> None:
    from jobs.passes import flush_passages

    world, api, issued = approved
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        ext = app.extensions["zhizhi"]
        monkeypatch.setattr(ext, "redis", redis.Redis.from_url(server.url, socket_timeout=1))
        gate.contexts.clear()
        device = world.device_tokens["outer_in"]
        first = _scan(api, device, issued["token"], uuid.uuid4().hex)
        assert first.status_code == 200 and first.get_json()["data"]["result"] == "ok", first.get_json()
        assert flush_passages(app) == 1

        server.stop()
        nonce = uuid.uuid4().hex
        for _ in range(2):  # the device retries with the same nonce
            down = _scan(api, device, issued["token"], nonce)
            assert down.status_code == 503, down.get_json()
            error = down.get_json()["error"]
            assert error["code"] == "temporarily_unavailable"
            assert "重试" in error["message"] and "离线" in error["message"]
        assert _count(db, Passage) == 1 and _count(db, ScanRefusal) == 0 and _count(db, Alert) == 0

        server.start()  # empty: the gate state is reloaded from the database
        gate.contexts.clear()
        back = _scan(api, device, issued["token"], nonce)
        assert back.status_code == 200, back.get_json()
        assert back.get_json()["data"]["result"] == "ok"
        again = _scan(api, device, issued["token"], nonce)
        assert again.get_json()["data"]["replayed"] is True
        flush_passages(app)
        assert _count(db, Passage) == 2
        assert db.scalar(select(func.count()).select_from(Passage).where(Passage.nonce == nonce)) == 1
    finally:
        server.stop()


def test_scan_against_a_redis_that_never_answered_is_a_503_not_a_500(app, db, approved, monkeypatch) -> None:
    world, api, issued = approved
    ext = app.extensions["zhizhi"]
    closed = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, socket_timeout=0.5)
    monkeypatch.setattr(ext, "redis", closed)
    gate.contexts.clear()
    resp = _scan(api, world.device_tokens["outer_in"], issued["token"], uuid.uuid4().hex)
    assert resp.status_code == 503, resp.get_json()
    assert resp.get_json()["error"]["code"] == "temporarily_unavailable"
