"""/healthz and the published key set."""

from __future__ import annotations

from services import keys
from tests.helpers import Api


def test_healthz_reports_database_and_redis(client, app) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    data = r.json["data"]
    assert data["database"] == "ok"
    expected = "ok" if app.extensions["zhizhi"].settings.redis_url else "in-process"
    assert data["redis"] == expected


def test_key_set_publishes_public_keys_only_and_keeps_retired_ones(client, db, app) -> None:
    kek = app.extensions["zhizhi"].settings.signing_kek
    ring = keys.signing_ring(db, "event:1", kek)
    first = ring.active.kid
    second = keys.rotate(db, "event:1", kek)
    doc = Api(client).get("/keys?scope=event:1").json["data"]
    by_kid = {k["kid"]: k for k in doc["keys"]}
    assert by_kid[first]["status"] == "retired" and by_kid[second]["status"] == "active"
    assert all("d" not in k for k in doc["keys"])
    assert keys.signing_ring(db, "event:1", kek).active.kid == second
