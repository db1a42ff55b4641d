"""Out-of-range officer and device input: a clear 4xx with its field, nothing written,
never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models.passes import Application, Event, WatchEntry
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.services.passes.builders import visitor_body


@pytest.mark.parametrize("event_id", [987_654, 10**12, 0, -3])
def test_watch_entry_for_an_unknown_event_is_refused_with_its_field(db, officer, event_id):
    body = {"event_id": event_id, "reason": "在逃", "severity": "reject", "id_number": valid_id_number(3)}
    resp = officer.post("/passes/watch-entries", body)
    assert resp.status_code in (404, 422), resp.get_json()
    assert "event_id" in resp.get_json()["error"]["fields"]
    assert db.scalar(select(func.count()).select_from(WatchEntry)) == 0


def _event_body(**policy) -> dict:
    return {
        "name": "测试活动",
        "starts_at": "2026-12-01T08:00:00+08:00",
        "ends_at": "2026-12-02T20:00:00+08:00",
        "zones": [{"ring": 1, "name": "外围区"}],
        "policy": policy,
    }


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"min_lead_hours": 10**12}, "policy.min_lead_hours"),
        ({"max_lead_days": 10**9}, "policy.max_lead_days"),
        ({"min_age": -1}, "policy.min_age"),
        ({"max_age": 100_000}, "policy.max_age"),
        ({"min_age": 60, "max_age": 18}, "policy.max_age"),
        ({"nonce_ttl_seconds": 1}, "policy.nonce_ttl_seconds"),
    ],
)
def test_event_policy_values_are_bounded(db, officer, policy, field):
    before = db.scalar(select(func.count()).select_from(Event))
    resp = officer.post("/passes/events", _event_body(**policy))
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["error"]["fields"]
    assert db.scalar(select(func.count()).select_from(Event)) == before


def test_an_event_whose_stored_policy_is_out_of_range_still_judges_applications(db, client, world):
    world.event.policy = {"min_lead_hours": 10**12, "max_lead_days": 10**12}  # stored before the bounds
    db.flush()
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post(f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(4)))
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()["data"]
    assert data["status"] == "rejected" and "提前至少" in data["result_message"]
    assert db.scalar(select(func.count()).select_from(Application)) == 1


@pytest.mark.parametrize("since", [10**30, 2**63, -1])
def test_a_huge_revocation_version_is_a_422(db, client, world, officer, since):
    device = Api(client, world.device_tokens["outer_in"])
    for api, path in (
        (device, "/passes/gate/bundle"),
        (officer, f"/passes/events/{world.event.id}/revocations"),
    ):
        resp = api.get(f"{path}?since={since}")
        assert resp.status_code == 422, resp.get_json()
        assert "since" in resp.get_json()["error"]["fields"]


def test_an_online_scan_without_a_time_zone_is_refused(db, client, world):
    device = Api(client, world.device_tokens["outer_in"])
    body = {"qr": "ZZ1:X", "nonce": "naive-0001", "scanned_at": "2026-11-29T08:00:00", "direction": "in"}
    resp = device.post("/passes/gate/scan", body)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["fields"] == {"scanned_at": "时间必须带时区"}
