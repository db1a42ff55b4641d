"""Officers list and edit an event's gates, zones and the event itself over the API:
keyset pages, partial updates that reach the gates, and bad input refused with its
field and nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from models.passes import Event, Gate, Zone
from models.platform import AuditEntry
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.miniapp_api.test_passes_end_to_end import scan
from tests.services.passes.builders import visitor_body


def patch(api: Api, path: str, body: dict):
    return api.client.patch("/api/v1" + path, json=body, headers={"Authorization": f"Bearer {api.token}"})


def _walk(api: Api, path: str, limit: int) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = api.get(path, query_string=query)
        assert resp.status_code == 200, resp.get_json()
        items += resp.get_json()["data"]["items"]
        cursor = resp.get_json()["data"]["next_cursor"]
        if cursor is None:
            return items


def _issued(db, client, world, seed: int, ring: int = 1) -> tuple[Api, dict]:
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post(
        f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(seed), ring=ring)
    )
    assert resp.get_json()["data"]["status"] == "approved", resp.get_json()
    return api, resp.get_json()["data"]["passes"][0]


def test_gates_and_zones_are_listed_in_keyset_pages(officer, world):
    gates = _walk(officer, f"/passes/events/{world.event.id}/gates", limit=3)
    assert [g["name"] for g in gates] == ["outer_in", "outer_out", "core_in", "outer_in2"]
    assert gates[2]["ring"] == 3 and gates[2]["direction"] == "in" and gates[2]["device_person_id"]
    zones = _walk(officer, f"/passes/events/{world.event.id}/zones", limit=2)
    assert [(z["ring"], z["name"]) for z in zones] == [(1, "外围区"), (2, "管控区"), (3, "核心区")]
    assert officer.get("/passes/events/987654/gates").status_code == 404
    bad = officer.get(f"/passes/events/{world.event.id}/gates", query_string={"cursor": "!!!"})
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"] == {"cursor": "分页游标无效"}


def test_a_gate_edit_changes_only_its_fields_and_reaches_the_gate_at_once(db, client, officer, world):
    api, issued = _issued(db, client, world, 101)
    gate = world.gates["outer_in2"]
    assert scan(api, world.device_tokens["outer_in2"], issued["token"])["result"] == "ok"  # context loaded
    resp = patch(officer, f"/passes/gates/{gate.id}", {"ring": 2, "name": "管控区西门"})
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()["data"]
    assert (data["ring"], data["name"], data["direction"], data["fail_closed"]) == (
        2,
        "管控区西门",
        "in",
        False,
    )
    assert scan(api, world.device_tokens["outer_in2"], issued["token"])["reason"] == "wrong_zone"
    audit = db.scalars(select(AuditEntry).where(AuditEntry.action == "passes.gate.update")).one()
    assert audit.data == {"ring": {"from": 1, "to": 2}, "name": {"from": "outer_in2", "to": "管控区西门"}}


def test_a_gate_device_can_be_unbound_and_another_bound(db, officer, world):
    gate, device = world.gates["outer_in2"], make_person(db, "gate")
    resp = patch(officer, f"/passes/gates/{gate.id}", {"device_person_id": device.id})
    assert resp.status_code == 200 and resp.get_json()["data"]["device_person_id"] == device.id
    resp = patch(officer, f"/passes/gates/{gate.id}", {"device_person_id": None})
    assert resp.status_code == 200 and resp.get_json()["data"]["device_person_id"] is None


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"ring": 4}, 422, "ring"),
        ({"ring": 0}, 422, "ring"),
        ({"name": None}, 422, "name"),
        ({"name": ""}, 422, "name"),
        ({"direction": "up"}, 422, "direction"),
        ({"fail_closed": None}, 422, "fail_closed"),
        ({"device_person_id": "citizen"}, 422, "device_person_id"),
        ({"device_person_id": "in_use"}, 409, None),
        ({"colour": "red"}, 422, "colour"),
    ],
)
def test_bad_gate_edits_name_their_field_and_write_nothing(db, officer, world, body, status, field):
    gate = world.gates["outer_in2"]
    if body.get("device_person_id") == "citizen":
        body = {"device_person_id": make_person(db, "citizen").id}
    elif body.get("device_person_id") == "in_use":
        body = {"device_person_id": world.gates["outer_in"].device_person_id}
    before = (gate.ring, gate.name, gate.direction, gate.fail_closed, gate.device_person_id)
    resp = patch(officer, f"/passes/gates/{gate.id}", body | {"vehicle": True})
    assert resp.status_code == status, resp.get_json()
    error = resp.get_json()["error"]
    assert error["message"]
    if field:
        assert field in error["fields"], error
    db.expire_all()
    gate = db.get(Gate, gate.id)
    assert (gate.ring, gate.name, gate.direction, gate.fail_closed, gate.device_person_id) == before
    assert gate.vehicle is False
    assert (
        db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("passes.gate%")))
        == 0
    )


def test_a_zone_limit_reaches_the_gates_and_null_lifts_it(db, client, officer, world):
    api, issued = _issued(db, client, world, 102)
    t = world.device_tokens
    assert scan(api, t["outer_in"], issued["token"])["result"] == "ok"
    assert scan(api, t["outer_out"], issued["token"], direction="out")["result"] == "ok"
    resp = patch(officer, f"/passes/events/{world.event.id}/zones/1", {"max_inside": 0, "name": "外围"})
    assert resp.status_code == 200, resp.get_json()
    zone = resp.get_json()["data"]
    assert (zone["ring"], zone["name"], zone["max_inside"], zone["daily_capacity_visitor"]) == (
        1,
        "外围",
        0,
        None,
    )
    assert scan(api, t["outer_in"], issued["token"])["reason"] == "capacity"
    resp = patch(officer, f"/passes/events/{world.event.id}/zones/1", {"max_inside": None})
    assert resp.get_json()["data"]["max_inside"] is None and resp.get_json()["data"]["name"] == "外围"
    assert scan(api, t["outer_in"], issued["token"])["result"] == "ok"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/zones/1", {"max_inside": -1}, 422, "max_inside"),
        ("/zones/1", {"daily_capacity_visitor": "many"}, 422, "daily_capacity_visitor"),
        ("/zones/1", {"name": None}, 422, "name"),
        ("/zones/7", {"name": "核心"}, 404, None),
    ],
)
def test_bad_zone_edits_are_refused_and_write_nothing(db, officer, world, path, body, status, field):
    resp = patch(officer, f"/passes/events/{world.event.id}{path}", body)
    assert resp.status_code == status, resp.get_json()
    if field:
        assert field in resp.get_json()["error"]["fields"]
    db.expire_all()
    zone = db.scalar(select(Zone).where(Zone.event_id == world.event.id, Zone.ring == 1))
    assert (zone.name, zone.max_inside, zone.daily_capacity_visitor) == ("外围区", None, None)


def _event_body(**over) -> dict:
    now = datetime.now(UTC)
    body = {
        "name": "时区测试活动",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
        "zones": [{"ring": 1, "name": "外围区"}],
        "policy": {"min_lead_hours": 0},
    }
    return body | over


def test_an_event_keeps_its_time_zone_and_the_dashboard_counts_hours_in_it(app, db, client, officer):
    resp = officer.post("/passes/events", _event_body(timezone="Etc/GMT-5"))  # UTC+05:00
    assert resp.status_code == 201, resp.get_json()
    created = resp.get_json()["data"]
    assert created["timezone"] == "Etc/GMT-5"
    assert db.get(Event, created["id"]).timezone == "Etc/GMT-5"
    assert officer.post("/passes/events", _event_body()).get_json()["data"]["timezone"] == "Asia/Shanghai"

    device = make_person(db, "gate")
    gate = officer.post(
        f"/passes/events/{created['id']}/gates",
        {"name": "东门", "ring": 1, "direction": "in", "device_person_id": device.id},
    )
    assert gate.status_code == 201, gate.get_json()
    citizen = Api(client, token_for(db, make_person(db, "citizen")))
    day = datetime.now(UTC).astimezone(timezone(timedelta(hours=5))).date()
    applied = citizen.post(
        f"/passes/events/{created['id']}/applications", visitor_body(valid_id_number(103), day=day)
    )
    assert applied.get_json()["data"]["status"] == "approved", applied.get_json()
    assert (
        scan(citizen, token_for(db, device), applied.get_json()["data"]["passes"][0]["token"])["result"]
        == "ok"
    )
    from jobs.passes import flush_passages

    flush_passages(app)
    board = officer.get(f"/passes/events/{created['id']}/dashboard").get_json()["data"]
    assert [p["hour"][-6:] for p in board["passages"]] == ["+05:00"]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "localtime", "../../etc/passwd", "+08:00"])
def test_an_unknown_time_zone_is_refused_and_no_event_written(db, officer, zone):
    before = db.scalar(select(func.count()).select_from(Event))
    resp = officer.post("/passes/events", _event_body(timezone=zone))
    assert resp.status_code == 422, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_timezone" and "timezone" in error["fields"] and error["message"]
    assert db.scalar(select(func.count()).select_from(Event)) == before


def test_an_event_edit_is_partial_and_its_time_zone_is_fixed_once_passes_exist(db, client, officer, world):
    path = f"/passes/events/{world.event.id}"
    resp = patch(
        officer, path, {"name": "乌镇峰会（更名）", "timezone": "Europe/Berlin", "policy": {"max_age": 90}}
    )
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()["data"]
    assert (data["name"], data["timezone"]) == ("乌镇峰会（更名）", "Europe/Berlin")
    assert data["policy"] == {"min_lead_hours": 0, "max_age": 90}
    assert patch(officer, path, {"policy": {"max_age": None}}).get_json()["data"]["policy"] == {
        "min_lead_hours": 0
    }

    bad = patch(officer, path, {"ends_at": "2000-01-01T00:00:00+08:00"})
    assert bad.status_code == 422 and "ends_at" in bad.get_json()["error"]["fields"]
    assert patch(officer, path, {"timezone": "Nowhere/Land"}).get_json()["error"]["fields"] == {
        "timezone": "应为 IANA 时区名称，如 Asia/Shanghai"
    }
    _issued(db, client, world, 104)
    refused = patch(officer, path, {"timezone": "Asia/Shanghai", "name": "不应写入"})
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "event_has_passes"
    db.expire_all()
    event = db.get(Event, world.event.id)
    assert (event.name, event.timezone) == ("乌镇峰会（更名）", "Europe/Berlin")
