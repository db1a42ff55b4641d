"""Vehicle lanes: a vehicle pass must match the plate the lane reads; a pass at the
wrong kind of lane gets ``wrong_lane``; refusals log no passage."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from jobs.passes import flush_passages
from models.passes import Passage, ScanRefusal
from services.passes import events
from services.passes.offline_gate import OfflineGate
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.miniapp_api.test_passes_end_to_end import scan
from tests.services.passes.builders import make_world, visitor_body

PLATE = "浙F·12345"


@pytest.fixture
def lanes(app, db, client):
    """The world, a vehicle lane (ring 1, in) with its device, a vehicle and a person pass."""
    world = make_world(db, app, datetime.now(UTC))
    device = make_person(db, "gate", name="车辆通道闸机")
    events.add_gate(
        db, world.officer, world.event.id, name="东门车辆通道", ring=1, direction="in",
        vehicle=True, device_person_id=device.id, fail_closed=False,
    )  # fmt: skip
    citizen = Api(client, token_for(db, make_person(db, "citizen")))
    path = f"/passes/events/{world.event.id}/applications"
    vehicle_body = visitor_body(
        valid_id_number(41),
        kind="vehicle",
        plate=PLATE,
        plate_colour="blue",
        driving_licence="330483199001011234",
    )
    vehicle = citizen.post(path, vehicle_body).get_json()["data"]["passes"][0]
    person = citizen.post(path, visitor_body(valid_id_number(42))).get_json()["data"]["passes"][0]
    return world, token_for(db, device), citizen, vehicle["token"], person["token"]


def _scan(api: Api, device: str, qr: str, **extra):
    body = {
        "qr": qr,
        "nonce": uuid.uuid4().hex,
        "scanned_at": datetime.now(UTC).isoformat(),
        "direction": "in",
    }
    return api.post("/passes/gate/scan", {**body, **extra}, token=device)


def _counts(app, db) -> tuple[int, list[str]]:
    flush_passages(app)
    return db.scalar(select(func.count()).select_from(Passage)), sorted(
        db.scalars(select(ScanRefusal.reason))
    )


@pytest.mark.parametrize("read", ["浙F12345", "浙f·12345", " 浙F 12345 ", "浙F-12345"])
def test_vehicle_pass_with_its_plate_passes_the_vehicle_lane(app, db, lanes, read):
    _world, lane, citizen, vehicle, _person = lanes
    resp = _scan(citizen, lane, vehicle, plate=read)
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()["data"]
    assert answer["result"] == "ok", answer
    assert answer["holder"].startswith("车辆 浙F1**45")
    assert _counts(app, db) == (1, [])


def test_other_plate_at_the_vehicle_lane_is_a_holder_mismatch(app, db, lanes):
    _world, lane, citizen, vehicle, _person = lanes
    answer = _scan(citizen, lane, vehicle, plate="浙F54321").get_json()["data"]
    assert answer["reason"] == "holder_mismatch"
    assert answer["detail"] == "车牌与通行证登记的车辆不符"
    assert answer["require_attention"] is True
    assert _counts(app, db) == (0, ["holder_mismatch"])


def test_vehicle_lane_without_a_plate_read_is_a_422_and_writes_nothing(app, db, lanes):
    _world, lane, citizen, vehicle, _person = lanes
    for extra in ({}, {"plate": " · "}):
        resp = _scan(citizen, lane, vehicle, **extra)
        assert resp.status_code == 422
        assert "车牌" in resp.get_json()["error"]["fields"]["plate"]
    assert _counts(app, db) == (0, [])


def test_person_pass_at_a_vehicle_lane_and_vehicle_pass_at_a_person_gate(app, db, lanes):
    world, lane, citizen, vehicle, person = lanes
    wrong = _scan(citizen, lane, person, plate=PLATE).get_json()["data"]
    assert (wrong["reason"], wrong["detail"]) == ("wrong_lane", "人员通行证不能在车辆通道使用")
    assert "车辆通道" in wrong["message"] and wrong["require_attention"] is False
    on_foot = scan(citizen, world.device_tokens["outer_in"], vehicle)
    assert (on_foot["reason"], on_foot["detail"]) == ("wrong_lane", "车辆通行证不能在人行通道使用")
    assert scan(citizen, world.device_tokens["outer_in"], person)["result"] == "ok"
    assert _counts(app, db) == (1, ["wrong_lane", "wrong_lane"])


def test_revoked_vehicle_pass_is_revoked_before_the_lane_or_plate(app, db, lanes):
    world, lane, citizen, vehicle, _person = lanes
    pass_id = _scan(citizen, lane, vehicle, plate=PLATE).get_json()["data"]["pass_id"]
    officer = Api(citizen.client, world.officer_token)
    assert officer.post(f"/passes/passes/{pass_id}/revoke", {"reason": "冒用"}).status_code == 200
    assert _scan(citizen, lane, vehicle, plate="浙F54321").get_json()["data"]["reason"] == "revoked"
    assert scan(citizen, world.device_tokens["outer_in"], vehicle)["reason"] == "revoked"


def test_offline_vehicle_lane_checks_lane_and_plate_with_only_the_bundle(app, db, client, lanes):
    _world, lane, _citizen, vehicle, person = lanes
    bundle = Api(client, lane).get("/passes/gate/bundle").get_json()["data"]
    assert bundle["gate"]["vehicle"] is True
    gate = OfflineGate(bundle)
    now = datetime.now(UTC)
    assert gate.verify(vehicle, now=now, plate="浙f·12345")[1] == ""
    assert gate.verify(vehicle, now=now, plate="浙F54321")[1] == "holder_mismatch"
    assert gate.verify(person, now=now, plate=PLATE)[1] == "wrong_lane"
    with pytest.raises(ValueError):
        gate.verify(vehicle, now=now)


def test_every_gate_reason_is_in_the_openapi_schema_with_its_chinese_message(app, client):
    from services.passes.rules import GATE_DETAILS, GATE_REASONS

    spec = client.get("/api/v1/openapi.json").get_json()
    scan_out = spec["components"]["schemas"]["ScanOut"]["properties"]
    reason = scan_out["reason"]
    enum = next(v["enum"] for v in reason.get("anyOf", [reason]) if "enum" in v)
    assert set(enum) == set(GATE_REASONS) and "wrong_lane" in enum
    for code, text in GATE_REASONS.items():
        assert f"{code}：{text}" in reason["description"]
    for text in GATE_DETAILS.values():
        assert text in scan_out["detail"]["description"]
