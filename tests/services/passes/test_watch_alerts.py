"""Watch-list hits at application and re-screening: a partial match alerts officers
once; a watched driver ends the vehicle's trust."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models.passes import Alert, Application, TrustEntry
from models.platform import OutboxItem
from services.passes import lists, verification
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.services.passes.builders import make_world, visitor_body


@pytest.fixture
def world(app, db):
    return make_world(db, app, datetime.now(UTC))


def _partial(officer: Api, world, severity: str, id_number: str, reason: str = "同名关注") -> int:
    birth = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
    body = {
        "event_id": world.event.id,
        "reason": reason,
        "severity": severity,
        "name": "张三",
        "birth_date": birth,
    }
    resp = officer.post("/passes/watch-entries", body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["data"]["id"]


def test_a_partial_match_at_application_alerts_officers_once_with_the_entry_severity(app, db, client, world):
    officer = Api(client, world.officer_token)
    idn = valid_id_number(141)
    _partial(officer, world, "alert", idn)
    strict = _partial(officer, world, "reject", idn, reason="疑似在逃人员")
    citizen = Api(client, token_for(db, make_person(db, "citizen")))
    data = citizen.post(f"/passes/events/{world.event.id}/applications", visitor_body(idn)).get_json()["data"]
    assert data["status"] == "manual_review"

    [alert] = db.scalars(select(Alert).where(Alert.application_id == data["id"])).all()
    assert (alert.kind, alert.severity, alert.watch_entry_id) == ("watchlist_partial", "reject", strict)
    assert "疑似在逃人员" in alert.message and idn not in alert.message
    push = db.scalars(select(OutboxItem).where(OutboxItem.kind == "passes.alert_officers")).one()
    assert push.payload == {"alert_id": alert.id}

    app_row = db.get(Application, data["id"])
    verification.run(db, world.event, app_row, now=datetime.now(UTC))  # the rules run again
    assert len(db.scalars(select(Alert).where(Alert.application_id == data["id"])).all()) == 1
    assert data["result_message"] == "需人工审核，请耐心等待" and data["rules"] is None


def test_clearing_a_partial_match_alert_trusts_the_person(db, client, world):
    officer = Api(client, world.officer_token)
    idn = valid_id_number(142)
    _partial(officer, world, "alert", idn)
    citizen = Api(client, token_for(db, make_person(db, "citizen")))
    data = citizen.post(f"/passes/events/{world.event.id}/applications", visitor_body(idn)).get_json()["data"]
    alert = db.scalars(select(Alert).where(Alert.application_id == data["id"])).one()
    resp = officer.post(f"/passes/alerts/{alert.id}/resolve", {"cleared": True, "note": "同名不同人"})
    assert resp.status_code == 200, resp.get_json()
    assert db.scalars(select(TrustEntry)).one().subject_index == alert.subject_index


def _vehicle(db, client, world, driver_id: str) -> dict:
    citizen = Api(client, token_for(db, make_person(db, "citizen")))
    body = visitor_body(driver_id) | {
        "kind": "vehicle", "plate": "浙F54321", "plate_colour": "blue", "vehicle_type": "小型轿车",
        "driving_licence": "330483198805050011",
    }  # fmt: skip
    resp = citizen.post(f"/passes/events/{world.event.id}/applications", body)
    assert resp.get_json()["data"]["status"] == "approved", resp.get_json()
    return resp.get_json()["data"]


@pytest.mark.parametrize("severity", ["alert", "reject"])
def test_watching_a_vehicles_driver_ends_the_vehicles_trust(app, db, client, world, severity):
    driver = valid_id_number(143)
    vehicle = _vehicle(db, client, world, driver)
    plate_subject = db.get(Application, vehicle["id"]).subject_index
    now = datetime.now(UTC)
    trust = lists.trust_subject(
        db, world.event.id, plate_subject, 1, source="clean_passages", actor_id=None, now=now
    )
    person = lists.trust_subject(
        db, world.event.id, "someone-else", 1, source="clean_passages", actor_id=None, now=now
    )
    db.flush()
    officer = Api(client, world.officer_token)
    body = {"event_id": world.event.id, "reason": "驾驶员被列管", "severity": severity, "id_number": driver}
    assert officer.post("/passes/watch-entries", body).status_code == 201
    db.expire_all()
    trust, person = db.get(TrustEntry, trust.id), db.get(TrustEntry, person.id)
    assert (trust.active, trust.ended_reason) == (False, "driver_watched") and trust.ended_at is not None
    assert person.active
