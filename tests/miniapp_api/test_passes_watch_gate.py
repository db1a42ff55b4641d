"""Watch-list hits at the gates: an exact ``reject`` entry refuses the pass, an exact
``alert`` entry lets it through and alerts officers; the gate alert carries the entry's
own severity and id (clearing an ``alert`` one trusts the subject), names the gate, and
is raised once per pass and gate while it is open."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models.passes import Alert, TrustEntry, WatchEntry
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.miniapp_api.test_passes_end_to_end import scan
from tests.services.passes.builders import visitor_body


@pytest.fixture
def issued(db, client, world):
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post(f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(61)))
    assert resp.get_json()["data"]["status"] == "approved", resp.get_json()
    return api, resp.get_json()["data"]["passes"][0]


def _watch(api, world, severity: str) -> int:
    body = {"event_id": world.event.id, "reason": "重点人员", "severity": severity}
    resp = Api(api.client, world.officer_token).post(
        "/passes/watch-entries", body | {"id_number": valid_id_number(61)}
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["data"]["id"]


def _gate_alerts(db) -> list[Alert]:
    db.expire_all()
    return list(db.scalars(select(Alert).where(Alert.kind == "watchlist_gate").order_by(Alert.id)))


def test_an_alert_entry_lets_the_pass_through_and_alerts_with_its_own_severity(db, world, issued):
    api, issued_pass = issued
    entry_id = _watch(api, world, "alert")
    t = world.device_tokens
    answer = scan(api, t["outer_in"], issued_pass["token"])
    assert answer["result"] == "ok" and answer["reason"] is None
    [alert] = _gate_alerts(db)
    assert alert.severity == "alert" and alert.watch_entry_id == entry_id
    assert alert.pass_id == issued_pass["id"] and alert.gate_id == world.gates["outer_in"].id
    assert "outer_in" in alert.message and f"闸机 {world.gates['outer_in'].id}" not in alert.message

    officer = Api(api.client, world.officer_token)
    resp = officer.post(f"/passes/alerts/{alert.id}/resolve", {"cleared": True, "note": "已核实"})
    assert resp.status_code == 200, resp.get_json()
    trust = db.scalars(select(TrustEntry)).one()
    assert trust.source == "officer_cleared" and trust.active
    assert scan(api, t["outer_out"], issued_pass["token"], direction="out")["result"] == "ok"
    assert scan(api, t["outer_in2"], issued_pass["token"])["result"] == "ok"
    assert len(_gate_alerts(db)) == 1  # a trusted subject raises no new alert


def test_a_reject_entry_refuses_and_its_cleared_alert_trusts_no_one(db, world, issued):
    api, issued_pass = issued
    entry_id = _watch(api, world, "reject")
    assert scan(api, world.device_tokens["outer_in"], issued_pass["token"])["reason"] == "watchlist"
    [alert] = _gate_alerts(db)
    assert alert.severity == "reject" and alert.watch_entry_id == entry_id
    officer = Api(api.client, world.officer_token)
    officer.post(f"/passes/alerts/{alert.id}/resolve", {"cleared": True, "note": "误报"})
    assert db.scalars(select(TrustEntry)).all() == []
    assert db.get(WatchEntry, entry_id).active


def test_repeat_scans_raise_one_alert_per_pass_and_gate_while_it_is_open(db, world, issued):
    api, issued_pass = issued
    _watch(api, world, "reject")
    t = world.device_tokens
    for _ in range(3):
        assert scan(api, t["outer_in"], issued_pass["token"])["reason"] == "watchlist"
    assert len(_gate_alerts(db)) == 1
    assert scan(api, t["outer_in2"], issued_pass["token"])["reason"] == "watchlist"
    alerts = _gate_alerts(db)
    assert [a.gate_id for a in alerts] == [world.gates["outer_in"].id, world.gates["outer_in2"].id]

    officer = Api(api.client, world.officer_token)
    officer.post(f"/passes/alerts/{alerts[0].id}/resolve", {"cleared": False, "note": "已处置"})
    assert scan(api, t["outer_in"], issued_pass["token"])["reason"] == "watchlist"
    assert len(_gate_alerts(db)) == 3  # the first was closed: a new scan is a new alert


def test_an_expired_watch_entry_stops_blocking_after_the_next_flush(app, db, world, issued):
    from datetime import timedelta

    from jobs.passes import flush_passages

    api, issued_pass = issued
    entry_id = _watch(api, world, "reject")
    t = world.device_tokens
    assert scan(api, t["outer_in"], issued_pass["token"])["reason"] == "watchlist"
    db.get(WatchEntry, entry_id).valid_until = datetime.now(UTC) - timedelta(seconds=1)  # it ran out
    db.flush()
    flush_passages(app)
    assert scan(api, t["outer_in"], issued_pass["token"])["result"] == "ok"
