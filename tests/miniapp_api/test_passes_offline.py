"""Offline gates over HTTP: bundle download (with deltas) and upload with conflicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from models.passes import Alert, Passage
from services.passes import hotstate
from services.passes.offline_gate import OfflineGate
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.miniapp_api.test_passes_end_to_end import scan
from tests.services.passes.builders import make_world, visitor_body


def _setup(app, db, client):
    world = make_world(db, app, datetime.now(UTC))
    citizen = Api(client, token_for(db, make_person(db, "citizen")))
    resp = citizen.post(f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(70)))
    return world, citizen, resp.get_json()["data"]["passes"][0]


def test_bundle_verifies_offline_and_conflicting_uploads_are_reported(app, db, client):
    world, _citizen, issued = _setup(app, db, client)
    devices = {k: Api(client, t) for k, t in world.device_tokens.items()}
    bundles = {k: devices[k].get("/passes/gate/bundle").get_json()["data"] for k in ("outer_in", "outer_in2")}
    assert "id_number" not in str(bundles["outer_in"])
    now = datetime.now(UTC)
    east, west = OfflineGate(bundles["outer_in"]), OfflineGate(bundles["outer_in2"])
    assert east.scan(issued["token"], nonce="east-0001", direction="in", now=now)["result"] == "ok"
    assert (
        west.scan(issued["token"], nonce="west-0001", direction="in", now=now + timedelta(minutes=3))[
            "result"
        ]
        == "ok"
    )

    reports = []
    for name, gate in (("outer_in", east), ("outer_in2", west)):
        scans = [{**s, "qr": s["qr"]} for s in gate.pending]
        resp = devices[name].post("/passes/gate/offline-scans", {"scans": scans})
        assert resp.status_code == 200, resp.get_json()
        reports.append(resp.get_json()["data"])
    assert reports[0]["accepted"] == 1 and reports[0]["conflicts"] == []
    conflict = reports[1]["conflicts"][0]
    assert conflict["pass_id"] == issued["id"]
    assert {conflict["first"]["nonce"], conflict["second"]["nonce"]} == {"east-0001", "west-0001"}
    assert db.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "offline_conflict")) == 1

    again = (
        devices["outer_in2"].post("/passes/gate/offline-scans", {"scans": west.pending}).get_json()["data"]
    )
    assert again["duplicates"] == 1 and again["accepted"] == 0
    assert db.scalar(select(func.count()).select_from(Passage)) == 2
    assert db.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "offline_conflict")) == 1


def test_revoked_pass_that_got_through_offline_raises_an_alert_and_delta_carries_it(app, db, client):
    world, _citizen, issued = _setup(app, db, client)
    device = Api(client, world.device_tokens["outer_in"])
    bundle = device.get("/passes/gate/bundle").get_json()["data"]
    version = bundle["revocations"]["version"]
    officer = Api(client, world.officer_token)
    assert officer.post(f"/passes/passes/{issued['id']}/revoke", {"reason": "冒用"}).status_code == 200
    gate = OfflineGate(bundle)  # stale: does not know the revocation yet
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert gate.scan(issued["token"], nonce="stale-0001", direction="in", now=later)["result"] == "ok"
    report = device.post("/passes/gate/offline-scans", {"scans": gate.pending}).get_json()["data"]
    assert report["revoked_passed"][0]["pass_id"] == issued["id"]
    assert db.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "revoked_passed")) == 1

    delta = device.get(f"/passes/gate/bundle?since={version}").get_json()["data"]["revocations"]
    assert delta["pass_ids"] == [issued["id"]]
    gate.apply_delta(delta)
    assert gate.verify(issued["token"], now=later)[1] == "revoked"


def test_core_gate_bundle_fails_closed_by_default(app, db, client):
    world = make_world(db, app, datetime.now(UTC))
    from services.passes import events

    device = make_person(db, "gate")
    events.add_gate(
        db,
        world.officer,
        world.event.id,
        name="核心区南门",
        ring=3,
        direction="in",
        device_person_id=device.id,
    )
    bundle = Api(client, token_for(db, device)).get("/passes/gate/bundle").get_json()["data"]
    assert bundle["gate"]["fail_closed"] is True
    assert OfflineGate(bundle).verify("ZZ1:ANY", now=datetime.now(UTC))[1] == "offline_closed"


def _upload(device: Api, gate: OfflineGate) -> dict:
    resp = device.post("/passes/gate/offline-scans", {"scans": gate.pending})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["data"]


def _offline(client, world, name: str) -> tuple[Api, OfflineGate]:
    device = Api(client, world.device_tokens[name])
    return device, OfflineGate(device.get("/passes/gate/bundle").get_json()["data"])


def test_online_gate_after_an_offline_entry_sees_the_pass_inside(app, db, client):
    world, citizen, issued = _setup(app, db, client)
    device, east = _offline(client, world, "outer_in")
    now = datetime.now(UTC)
    assert east.scan(issued["token"], nonce="east-in-01", direction="in", now=now)["result"] == "ok"
    report = _upload(device, east)
    assert report["accepted"] == 1
    online = scan(citizen, world.device_tokens["outer_in2"], issued["token"])
    assert online["reason"] == "already_inside"
    _upload(device, east)  # a re-upload changes nothing
    out = scan(citizen, world.device_tokens["outer_out"], issued["token"], direction="out")
    assert out["result"] == "ok"
    assert scan(citizen, world.device_tokens["outer_in2"], issued["token"])["result"] == "ok"
    inside = app.extensions["zhizhi"].redis.hget(hotstate.key(world.event.id, "inside"), "1")
    assert int(inside) == 1


def test_offline_exit_lets_the_pass_in_again_online_but_an_older_entry_does_not(app, db, client):
    world, citizen, issued = _setup(app, db, client)
    t = world.device_tokens
    assert scan(citizen, t["outer_in"], issued["token"])["result"] == "ok"  # online, inside now
    device, exit_gate = _offline(client, world, "outer_out")
    later = datetime.now(UTC) + timedelta(seconds=2)
    assert exit_gate.scan(issued["token"], nonce="west-out-01", direction="out", now=later)["result"] == "ok"
    _upload(device, exit_gate)
    assert scan(citizen, t["outer_in2"], issued["token"])["result"] == "ok"  # re-entry after the exit
    assert scan(citizen, t["outer_out"], issued["token"], direction="out")["result"] == "ok"
    # An offline entry from before that online exit, uploaded only now: still outside.
    device, stale = _offline(client, world, "outer_in2")
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    assert stale.scan(issued["token"], nonce="stale-in-01", direction="in", now=earlier)["result"] == "ok"
    assert _upload(device, stale)["accepted"] == 1
    assert scan(citizen, t["outer_in"], issued["token"])["result"] == "ok"


def test_watched_passes_in_an_offline_upload_alert_officers_once(app, db, client):
    world, _citizen, issued = _setup(app, db, client)
    officer = Api(client, world.officer_token)
    entry = {
        "event_id": world.event.id,
        "reason": "重点人员",
        "severity": "alert",
        "id_number": valid_id_number(70),
    }
    assert officer.post("/passes/watch-entries", entry).status_code == 201
    device = Api(client, world.device_tokens["outer_in"])
    bundle = device.get("/passes/gate/bundle").get_json()["data"]
    assert bundle["watched_pass_ids"] == []  # an ``alert`` entry does not refuse the pass
    gate = OfflineGate(bundle)
    now = datetime.now(UTC)
    assert gate.scan(issued["token"], nonce="watch-0001", direction="in", now=now)["result"] == "ok"
    for _ in range(2):
        report = device.post("/passes/gate/offline-scans", {"scans": gate.pending}).get_json()["data"]
    assert report["duplicates"] == 1
    alerts = db.scalars(select(Alert).where(Alert.kind == "watchlist_gate")).all()
    assert [(a.severity, a.pass_id) for a in alerts] == [("alert", issued["id"])]
