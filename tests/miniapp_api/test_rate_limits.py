"""Login and binding endpoints are rate limited per client / person."""

from __future__ import annotations

import pytest

from core import ratelimit
from core.errors import RateLimited
from tests.helpers import Api, make_person, token_for


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    """All requests of a test fall in one window, however slow the machine is."""
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1_800_000_030.0)


def test_login_attempts_past_the_limit_get_429_with_retry_after(client, db, monkeypatch) -> None:
    monkeypatch.setitem(ratelimit.LIMITS, "login", (3, 60))
    api = Api(client)
    codes = [
        api.post("/auth/password", json={"username": "x", "password": "y"}).status_code for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    r = api.post("/auth/password", json={"username": "x", "password": "y"})
    assert r.json["error"]["code"] == "rate_limited"
    assert "秒后再试" in r.json["error"]["message"]
    assert r.headers["Retry-After"] == "30"


def test_binding_codes_are_limited_per_person(client, db, monkeypatch) -> None:
    monkeypatch.setitem(ratelimit.LIMITS, "binding", (2, 600))
    a, b = make_person(db, "citizen"), make_person(db, "citizen")
    api_a, api_b = Api(client, token_for(db, a)), Api(client, token_for(db, b))
    assert [api_a.post("/auth/binding-codes", json={}).status_code for _ in range(3)] == [201, 201, 429]
    assert api_b.post("/auth/binding-codes", json={}).status_code == 201


def test_a_new_window_lets_requests_through_again(app) -> None:
    client = app.extensions["zhizhi"].redis
    for _ in range(ratelimit.LIMITS["binding"][0]):
        ratelimit.hit(client, "binding", "p1", now=1000.0)
    with pytest.raises(RateLimited):
        ratelimit.hit(client, "binding", "p1", now=1000.0)
    ratelimit.hit(client, "binding", "p1", now=1000.0 + ratelimit.LIMITS["binding"][1])


def test_leaderboard_exports_are_limited_per_person(client, db, monkeypatch) -> None:
    """Whole-board downloads share one per-person limit (xlsx and csv alike)."""
    monkeypatch.setitem(ratelimit.LIMITS, "export", (2, 60))
    a, b = make_person(db, "trainer"), make_person(db, "trainer")
    api_a, api_b = Api(client, token_for(db, a)), Api(client, token_for(db, b))
    url = "/quiz/competitions/999999/leaderboard"
    codes = [api_a.get(f"{url}.xlsx").status_code, api_a.get(f"{url}.csv").status_code]
    assert codes == [404, 404]  # counted before the competition is looked up
    r = api_a.get(f"{url}.csv")
    assert r.status_code == 429 and "导出过于频繁" in r.json["error"]["message"]
    assert api_b.get(f"{url}.xlsx").status_code == 404
