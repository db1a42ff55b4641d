"""Applications over HTTP: bad input, duplicates, review, lists, groups, cancel, re-issue."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from models.passes import Alert, Application, PassCredential, RuleResult
from models.platform import AuditEntry
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.miniapp_api.test_passes_end_to_end import scan
from tests.services.passes.builders import make_world, visitor_body


@pytest.fixture
def citizen(db, client):
    return Api(client, token_for(db, make_person(db, "citizen")))


def _apply(api, world, body, key=None):
    headers = {"Idempotency-Key": key} if key else None
    return api.post(f"/passes/events/{world.event.id}/applications", body, headers=headers)


def _count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_bad_id_checksum_is_refused_with_its_code_and_nothing_written(db, world, citizen):
    good = valid_id_number(3)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    resp = _apply(citizen, world, visitor_body(bad))
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_resident_id"
    assert "id_number" in error["fields"]
    assert _count(db, Application) == 0 and _count(db, RuleResult) == 0


@pytest.mark.parametrize(
    ("plate", "colour", "code"),
    [
        ("浙A1234", "blue", "invalid_plate"),
        ("ZA12345", "blue", "invalid_plate"),
        ("浙AD12345", "blue", "invalid_plate_colour"),
    ],
)
def test_malformed_plate_is_refused_with_its_code_and_nothing_written(
    db, world, citizen, plate, colour, code
):
    body = visitor_body(
        valid_id_number(4),
        kind="vehicle",
        plate=plate,
        plate_colour=colour,
        driving_licence="330106199001011234",
    )
    resp = _apply(citizen, world, body)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == code
    assert "plate" in resp.get_json()["error"]["fields"]
    assert _count(db, Application) == 0


def test_vehicle_application_is_approved_and_plate_masked(db, world, citizen):
    body = visitor_body(
        valid_id_number(5),
        kind="vehicle",
        plate="浙F·12345",
        plate_colour="blue",
        driving_licence="330483199001011234",
    )
    resp = _apply(citizen, world, body)
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()["data"]
    assert data["status"] == "approved" and data["kind"] == "vehicle"
    assert data["plate"] == "浙F1**45"
    assert data["id_number"].count("*") == 10


def test_duplicate_application_points_at_existing_one(db, world, citizen):
    first = _apply(citizen, world, visitor_body(valid_id_number(6))).get_json()["data"]
    resp = _apply(citizen, world, visitor_body(valid_id_number(6)))
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "duplicate_application"
    assert error["details"]["existing_application_id"] == first["id"]


def test_idempotency_key_replays_first_response(db, world, citizen):
    a = _apply(citizen, world, visitor_body(valid_id_number(9)), key="k-1")
    b = _apply(citizen, world, visitor_body(valid_id_number(9)), key="k-1")
    assert a.status_code == b.status_code == 201
    assert a.get_json() == b.get_json()
    assert _count(db, Application) == 1


def test_dates_outside_event_are_rejected_with_stored_reason(db, world, citizen):
    resp = _apply(citizen, world, visitor_body(valid_id_number(10), day=date(2030, 1, 1)))
    data = resp.get_json()["data"]
    assert data["status"] == "rejected" and data["result_message"] == "来访日期不在活动期间内"
    officer = Api(citizen.client, world.officer_token)
    rules = officer.get(f"/passes/applications/{data['id']}").get_json()["data"]["rules"]
    dates = next(r for r in rules if r["rule"] == "dates")
    assert dates["outcome"] == "reject" and dates["reason_code"] == "outside_event"
    assert "活动期间" in dates["message"]
    assert data["passes"] == []


def test_capacity_of_a_ring_rejects_the_next_application(app, db, client):
    world = make_world(db, app, datetime.now(UTC), capacity=1)
    api = Api(client, token_for(db, make_person(db, "citizen")))
    assert (
        _apply(api, world, visitor_body(valid_id_number(11), ring=2)).get_json()["data"]["status"]
        == "approved"
    )
    data = _apply(api, world, visitor_body(valid_id_number(12))).get_json()["data"]
    assert data["status"] == "rejected" and data["result_message"] == "该区域当日名额已满"
    rules = (
        Api(client, world.officer_token).get(f"/passes/applications/{data['id']}").get_json()["data"]["rules"]
    )
    assert next(r for r in rules if r["rule"] == "capacity")["reason_code"] == "capacity_full"


def test_partial_watch_match_goes_to_review_and_officer_decision_is_audited(app, db, world, citizen):
    officer = Api(citizen.client, world.officer_token)
    idn = valid_id_number(13)
    birth = f"{idn[6:10]}-{idn[10:12]}-{idn[12:14]}"
    resp = officer.post(
        "/passes/watch-entries",
        {
            "event_id": world.event.id,
            "reason": "重点关注",
            "severity": "alert",
            "name": "张三",
            "birth_date": birth,
        },
    )
    assert resp.status_code == 201, resp.get_json()
    data = _apply(citizen, world, visitor_body(idn)).get_json()["data"]
    assert data["status"] == "manual_review"
    queue = officer.get(f"/passes/events/{world.event.id}/review-queue").get_json()["data"]
    assert [a["id"] for a in queue["items"]] == [data["id"]]
    resp = officer.post(
        f"/passes/applications/{data['id']}/decision", {"approve": True, "note": "已核实，同名不同人"}
    )
    assert resp.status_code == 200, resp.get_json()
    decided = resp.get_json()["data"]
    assert decided["status"] == "approved" and len(decided["passes"]) == 1
    audit = db.scalars(select(AuditEntry).where(AuditEntry.action == "passes.review.approve")).one()
    assert audit.object_id == str(data["id"])
    again = officer.post(f"/passes/applications/{data['id']}/decision", {"approve": False, "note": "x"})
    assert again.status_code == 409


def test_exact_watch_hit_rejects_and_alerts_and_gate_refuses_existing_pass(app, db, world, citizen):
    idn = valid_id_number(14)
    issued = _apply(citizen, world, visitor_body(idn)).get_json()["data"]["passes"][0]
    officer = Api(citizen.client, world.officer_token)
    resp = officer.post(
        "/passes/watch-entries",
        {"event_id": world.event.id, "reason": "在逃", "severity": "reject", "id_number": idn},
    )
    assert resp.status_code == 201
    answer = scan(citizen, world.device_tokens["outer_in"], issued["token"])
    assert answer["reason"] == "watchlist" and answer["require_attention"] is True
    assert db.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "watchlist_gate")) == 1
    other = Api(citizen.client, token_for(db, make_person(db, "citizen")))
    data = _apply(
        other,
        world,
        visitor_body(idn, day=None, ring=2, visit_to=None) | {"visit_to": issued["valid_to"][:10]},
    )
    assert data.status_code == 409  # the open application is still the duplicate


def test_cleared_alert_trusts_the_subject_and_suppresses_repeat_alerts(app, db, world, citizen):
    idn = valid_id_number(15)
    officer = Api(citizen.client, world.officer_token)
    officer.post(
        "/passes/watch-entries",
        {"event_id": world.event.id, "reason": "曾有纠纷", "severity": "alert", "id_number": idn},
    )
    first = _apply(citizen, world, visitor_body(idn)).get_json()["data"]
    assert first["status"] == "approved"
    alert = db.scalars(select(Alert).where(Alert.application_id == first["id"])).one()
    resp = officer.post(f"/passes/alerts/{alert.id}/resolve", {"cleared": True, "note": "已核实无风险"})
    assert resp.status_code == 200, resp.get_json()
    citizen.post(f"/passes/applications/{first['id']}/cancel")
    second = _apply(citizen, world, visitor_body(idn)).get_json()["data"]
    assert second["status"] == "approved"
    rules = officer.get(f"/passes/applications/{second['id']}").get_json()["data"]["rules"]
    assert next(r for r in rules if r["rule"] == "trust")["reason_code"] == "trusted_suppressed"
    assert db.scalar(select(func.count()).select_from(Alert).where(Alert.application_id == second["id"])) == 0


def test_group_members_get_own_passes_and_arrive_partially(app, db, world, citizen):
    members = [
        {"name": n, "id_number": valid_id_number(20 + i), "mobile": "13900000000"}
        for i, n in enumerate(["甲", "乙", "丙"])
    ]
    body = {
        k: v
        for k, v in visitor_body(valid_id_number(1)).items()
        if k not in ("kind", "name", "id_number", "mobile")
    }
    resp = citizen.post(
        f"/passes/events/{world.event.id}/group-applications",
        {**body, "name": "浙大代表团", "members": members},
    )
    assert resp.status_code == 201, resp.get_json()
    apps = resp.get_json()["data"]["applications"]
    assert [a["status"] for a in apps] == ["approved"] * 3
    tokens = [a["passes"][0]["token"] for a in apps]
    assert len(set(tokens)) == 3
    assert scan(citizen, world.device_tokens["outer_in"], tokens[1])["result"] == "ok"  # one arrives alone


def test_group_with_one_bad_member_writes_nothing(db, world, citizen):
    members = [
        {"name": "甲", "id_number": valid_id_number(30), "mobile": "13900000000"},
        {"name": "乙", "id_number": "330106199001011230", "mobile": "13900000000"},
    ]
    body = {
        k: v
        for k, v in visitor_body(valid_id_number(1)).items()
        if k not in ("kind", "name", "id_number", "mobile")
    }
    resp = citizen.post(
        f"/passes/events/{world.event.id}/group-applications", {**body, "name": "团", "members": members}
    )
    assert resp.status_code == 422
    assert "members.1.id_number" in resp.get_json()["error"]["fields"]
    assert _count(db, Application) == 0


def test_applicant_lists_reads_and_cancels_own_applications_only(db, world, citizen):
    ids = [
        _apply(citizen, world, visitor_body(valid_id_number(40 + i))).get_json()["data"]["id"]
        for i in range(3)
    ]
    page = citizen.get("/passes/applications?limit=2").get_json()["data"]
    assert [a["id"] for a in page["items"]] == ids[::-1][:2]
    rest = citizen.get(f"/passes/applications?limit=2&cursor={page['next_cursor']}").get_json()["data"]
    assert [a["id"] for a in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    stranger = Api(citizen.client, token_for(db, make_person(db, "citizen")))
    assert stranger.get(f"/passes/applications/{ids[0]}").status_code == 404
    assert stranger.post(f"/passes/applications/{ids[0]}/cancel").status_code == 404
    resp = citizen.post(f"/passes/applications/{ids[0]}/cancel")
    assert resp.get_json()["data"]["status"] == "cancelled"
    assert resp.get_json()["data"]["passes"][0]["status"] == "revoked"


def test_reissue_revokes_the_old_token(app, db, world, citizen):
    issued = _apply(citizen, world, visitor_body(valid_id_number(50))).get_json()["data"]["passes"][0]
    officer = Api(citizen.client, world.officer_token)
    resp = officer.post(f"/passes/passes/{issued['id']}/reissue", {"ring": 3})
    assert resp.status_code == 201, resp.get_json()
    new = resp.get_json()["data"]
    assert new["replaces_id"] == issued["id"] and new["ring"] == 3
    assert scan(citizen, world.device_tokens["core_in"], issued["token"])["reason"] == "revoked"
    assert scan(citizen, world.device_tokens["core_in"], new["token"])["result"] == "ok"
    revs = officer.get(f"/passes/events/{world.event.id}/revocations?since=0").get_json()["data"]
    assert revs["pass_ids"] == [issued["id"]] and revs["version"] == 1
    assert db.get(PassCredential, issued["id"]).status.value == "revoked"


def test_dashboard_counts(app, db, world, citizen):
    from jobs.passes import flush_passages

    issued = _apply(citizen, world, visitor_body(valid_id_number(60))).get_json()["data"]["passes"][0]
    scan(citizen, world.device_tokens["outer_in"], issued["token"])
    flush_passages(app)
    officer = Api(citizen.client, world.officer_token)
    data = officer.get(f"/passes/events/{world.event.id}/dashboard").get_json()["data"]
    assert data["applications"][0]["status"] == "approved"
    assert data["passages"][0]["count"] == 1
    assert data["inside"][0] == {"ring": 1, "name": "外围区", "inside": 1}
    assert [z["inside"] for z in data["inside"]] == [1, 0, 0]
    assert citizen.get(f"/passes/events/{world.event.id}/dashboard").status_code == 403


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"visit_from": "2026-01-01", "visit_to": "2026-12-31"}, "visit_to"),
        ({"visit_from": "9999-12-31", "visit_to": "9999-12-31"}, "visit_from"),
        ({"time_from": "25:00"}, "time_from"),
        ({"ring": 7}, "ring"),
        ({"mobile": "12345"}, "mobile"),
    ],
)
def test_out_of_range_application_input_is_a_clear_422(db, world, citizen, over, field):
    resp = _apply(citizen, world, visitor_body(valid_id_number(80), **over))
    assert resp.status_code == 422
    assert field in resp.get_json()["error"]["fields"]
    assert _count(db, Application) == 0


def test_event_policy_accepts_only_known_parameters(db, world, client):
    officer = Api(client, world.officer_token)
    body = {
        "name": "测试活动",
        "starts_at": "2026-12-01T08:00:00+08:00",
        "ends_at": "2026-12-02T20:00:00+08:00",
        "zones": [{"ring": 1, "name": "外围区"}],
        "policy": {"nonce_ttl_seconds": 1},
    }
    resp = officer.post("/passes/events", body)
    assert resp.status_code == 422 and "policy.nonce_ttl_seconds" in resp.get_json()["error"]["fields"]
    resp = officer.post("/passes/events", {**body, "policy": {"min_lead_hours": 0}})
    assert resp.status_code == 201, resp.get_json()
    assert [z["name"] for z in resp.get_json()["data"]["zones"]] == ["外围区"]


def test_cross_tenant_pass_card_and_reissue_are_refused(app, db, world, citizen, run_jobs):
    data = _apply(citizen, world, visitor_body(valid_id_number(81))).get_json()["data"]
    run_jobs()
    pass_id = data["passes"][0]["id"]
    assert citizen.get(f"/passes/passes/{pass_id}/card.png").status_code == 200
    stranger = Api(citizen.client, token_for(db, make_person(db, "citizen")))
    assert stranger.get(f"/passes/applications/{data['id']}").status_code == 404
    assert stranger.post(f"/passes/applications/{data['id']}/cancel").status_code == 404
    assert stranger.get(f"/passes/passes/{pass_id}/card.png").status_code == 404
    assert stranger.get(f"/passes/passes/{pass_id}/card.pdf").status_code == 404
    assert stranger.post(f"/passes/passes/{pass_id}/reissue", {}).status_code == 404
    assert db.get(PassCredential, pass_id).status.value == "active"


def test_a_ring_with_no_daily_capacity_approves_no_one(app, db, client):
    world = make_world(db, app, datetime.now(UTC), capacity=0)
    api = Api(client, token_for(db, make_person(db, "citizen")))
    data = _apply(api, world, visitor_body(valid_id_number(13))).get_json()["data"]
    assert data["status"] == "rejected" and data["result_message"] == "该区域当日名额已满"
    assert data["passes"] == []
