"""Officers list and edit watch-list and trust-list entries and withdraw signing keys
over the API; every change reaches the gates (Redis flags, gate contexts) at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models.passes import Alert, PassCredential, TrustEntry, WatchEntry
from models.platform import AuditEntry
from services import keys
from services.passes.events import key_scope
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.miniapp_api.test_passes_end_to_end import scan
from tests.miniapp_api.test_passes_officer_layout import patch
from tests.services.passes.builders import visitor_body


def _issued(db, client, world, seed: int) -> tuple[Api, dict]:
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post(f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(seed)))
    assert resp.get_json()["data"]["status"] == "approved", resp.get_json()
    return api, resp.get_json()["data"]["passes"][0]


def _watch(officer: Api, world, seed: int, severity: str = "alert", **over) -> dict:
    body = {
        "event_id": world.event.id,
        "reason": "重点人员",
        "severity": severity,
        "id_number": valid_id_number(seed),
    }
    resp = officer.post("/passes/watch-entries", body | over)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["data"]


def test_watch_entries_are_listed_newest_first_and_filtered(db, officer, world):
    exact = _watch(officer, world, 111)
    partial = officer.post(
        "/passes/watch-entries",
        {"reason": "同名关注", "severity": "reject", "name": "李四", "birth_date": "1985-03-04"},
    ).get_json()["data"]
    other = officer.post(
        "/passes/events", {"name": "另一活动", "starts_at": "2026-12-01T08:00:00+08:00",
                           "ends_at": "2026-12-02T20:00:00+08:00", "zones": [{"ring": 1, "name": "外围区"}]},
    ).get_json()["data"]  # fmt: skip
    _watch(officer, world, 112, event_id=other["id"])
    officer.post(f"/passes/watch-entries/{exact['id']}/deactivate")

    page = officer.get("/passes/watch-entries", query_string={"event_id": world.event.id}).get_json()["data"]
    assert [e["id"] for e in page["items"]] == [partial["id"], exact["id"]]
    shown = {e["id"]: e for e in page["items"]}
    assert shown[exact["id"]]["match"] == "exact" and shown[exact["id"]]["active"] is False
    assert shown[exact["id"]]["subject"] == exact["subject"] and "*" in exact["subject"]
    assert shown[partial["id"]] | {"created_at": None} == {
        "id": partial["id"], "event_id": None, "match": "partial", "subject": "李*（1985 年生）",
        "reason": "同名关注", "severity": "reject", "valid_until": None, "active": True,
        "created_at": None, "revised_at": None,
    }  # fmt: skip
    active = officer.get("/passes/watch-entries", query_string={"active": "true", "limit": 1}).get_json()[
        "data"
    ]
    assert len(active["items"]) == 1 and active["next_cursor"]
    assert valid_id_number(111) not in str(page)
    assert officer.get("/passes/watch-entries", query_string={"event_id": 987654}).status_code == 404


def test_escalating_a_watch_entry_refuses_at_the_gate_and_ends_trust_granted_before(
    db, client, officer, world
):
    api, issued = _issued(db, client, world, 113)
    entry = _watch(officer, world, 113, "alert")
    t = world.device_tokens
    assert scan(api, t["outer_in"], issued["token"])["result"] == "ok"
    alert = db.scalars(select(Alert).where(Alert.kind == "watchlist_gate")).one()
    officer.post(f"/passes/alerts/{alert.id}/resolve", {"cleared": True, "note": "已核实"})
    assert db.scalars(select(TrustEntry)).one().active

    resp = patch(officer, f"/passes/watch-entries/{entry['id']}", {"severity": "reject", "reason": "在逃"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["data"]["severity"] == "reject" and resp.get_json()["data"]["revised_at"]
    db.expire_all()
    trust = db.scalars(select(TrustEntry)).one()
    assert (trust.active, trust.ended_reason) == (False, "watchlist_changed")
    assert scan(api, t["outer_out"], issued["token"], direction="out")["reason"] == "watchlist"

    resp = patch(officer, f"/passes/watch-entries/{entry['id']}", {"severity": "alert"})  # looser again
    assert resp.get_json()["data"]["severity"] == "alert"
    assert scan(api, t["outer_out"], issued["token"], direction="out")["result"] == "ok"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"valid_until": "2001-01-01T00:00:00+08:00"}, 422, "valid_until"),
        ({"valid_until": "2026-12-01T00:00:00"}, 422, "valid_until"),
        ({"valid_until": "3000-01-01T00:00:00+08:00"}, 422, "valid_until"),
        ({"severity": "ignore"}, 422, "severity"),
        ({"reason": None}, 422, "reason"),
        ({"reason": ""}, 422, "reason"),
        ({"id_number": "110105194912310029"}, 422, "id_number"),
    ],
)
def test_bad_watch_edits_name_their_field_and_write_nothing(db, officer, world, body, status, field):
    entry = _watch(officer, world, 114)
    resp = patch(officer, f"/passes/watch-entries/{entry['id']}", {"severity": "reject"} | body)
    assert resp.status_code == status, resp.get_json()
    assert field in resp.get_json()["error"]["fields"] and resp.get_json()["error"]["message"]
    db.expire_all()
    stored = db.get(WatchEntry, entry["id"])
    assert (stored.severity.value, stored.reason, stored.valid_until, stored.revised_at) == (
        "alert", "重点人员", None, None,
    )  # fmt: skip


def test_an_ended_watch_entry_is_not_edited(db, officer, world):
    entry = _watch(officer, world, 115)
    officer.post(f"/passes/watch-entries/{entry['id']}/deactivate")
    resp = patch(officer, f"/passes/watch-entries/{entry['id']}", {"reason": "改"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "watch_entry_inactive"
    assert patch(officer, "/passes/watch-entries/987654", {"reason": "改"}).status_code == 404


def _trusted(db, client, officer, world, seed: int) -> tuple[Api, dict, TrustEntry]:
    api, issued = _issued(db, client, world, seed)
    _watch(officer, world, seed, "alert")
    assert scan(api, world.device_tokens["outer_in"], issued["token"])["result"] == "ok"
    alert = db.scalars(
        select(Alert).where(Alert.kind == "watchlist_gate", Alert.pass_id == issued["id"])
    ).one()
    officer.post(f"/passes/alerts/{alert.id}/resolve", {"cleared": True, "note": "已核实"})
    return api, issued, db.scalars(select(TrustEntry).where(TrustEntry.subject_index.is_not(None))).one()


def test_trust_entries_are_listed_edited_and_ended_early_and_the_gates_alert_again(
    db, client, officer, world
):
    api, issued, trust = _trusted(db, client, officer, world, 116)
    t = world.device_tokens
    path = f"/passes/events/{world.event.id}/trust-entries"
    [shown] = officer.get(path).get_json()["data"]["items"]
    assert (shown["id"], shown["subject"], shown["source"], shown["active"]) == (
        trust.id, "人员 张*", "officer_cleared", True,
    )  # fmt: skip
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    resp = patch(officer, f"/passes/trust-entries/{trust.id}", {"valid_until": until.isoformat(), "ring": 3})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["data"]["ring"] == 3
    assert datetime.fromisoformat(resp.get_json()["data"]["valid_until"]) == until

    assert scan(api, t["outer_out"], issued["token"], direction="out")["result"] == "ok"
    gate_alerts = select(func.count()).select_from(Alert).where(Alert.kind == "watchlist_gate")
    assert db.scalar(gate_alerts) == 1  # trusted: the scan raised nothing
    resp = officer.post(f"/passes/trust-entries/{trust.id}/deactivate")
    assert resp.status_code == 200 and resp.get_json()["data"]["ended_reason"] == "officer_ended"
    assert scan(api, t["outer_in2"], issued["token"])["result"] == "ok"
    assert db.scalar(gate_alerts) == 2  # the gates alert on the subject again
    assert officer.post(f"/passes/trust-entries/{trust.id}/deactivate").status_code == 200  # idempotent
    assert [
        e["active"] for e in officer.get(path, query_string={"active": "false"}).get_json()["data"]["items"]
    ] == [False]
    actions = set(db.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "pass_trust_entry")))
    assert actions == {"passes.trust.update", "passes.trust.end"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"valid_until": "2001-01-01T00:00:00+08:00"}, 422, "valid_until"),
        ({"valid_until": None}, 422, "valid_until"),
        ({"ring": 4}, 422, "ring"),
        ({"ring": 0}, 422, "ring"),
        ({"source": "officer"}, 422, "source"),
    ],
)
def test_bad_trust_edits_name_their_field_and_write_nothing(db, client, officer, world, body, status, field):
    _api, _issued_pass, trust = _trusted(db, client, officer, world, 117)
    before = (trust.valid_until, trust.ring)
    resp = patch(officer, f"/passes/trust-entries/{trust.id}", body)
    assert resp.status_code == status, resp.get_json()
    assert field in resp.get_json()["error"]["fields"]
    db.expire_all()
    trust = db.get(TrustEntry, trust.id)
    assert (trust.valid_until, trust.ring, trust.active) == (*before, True)
    officer.post(f"/passes/trust-entries/{trust.id}/deactivate")
    ended = patch(officer, f"/passes/trust-entries/{trust.id}", {"ring": 2})
    assert ended.status_code == 409 and ended.get_json()["error"]["code"] == "trust_entry_ended"


def test_a_withdrawn_key_is_unknown_at_the_gate_and_gone_from_the_bundle(app, db, client, officer, world):
    api, issued = _issued(db, client, world, 118)
    t = world.device_tokens
    assert scan(api, t["outer_in"], issued["token"])["result"] == "ok"  # the gate holds the key now
    old_kid = db.get(PassCredential, issued["id"]).kid
    path = f"/passes/events/{world.event.id}/keys"
    refused = officer.post(f"{path}/{old_kid}/revoke")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "key_active"
    new_kid = officer.post(f"/passes/events/{world.event.id}/keys/rotate").get_json()["data"]["kid"]
    listed = officer.get(path).get_json()["data"]["keys"]
    assert [(k["kid"], k["status"], k["active_passes"]) for k in listed] == [
        (old_kid, "retired", 1),
        (new_kid, "active", 0),
    ]

    resp = officer.post(f"{path}/{old_kid}/revoke")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["data"] == {"kid": old_kid, "status": "revoked", "reissued": 1}
    assert scan(api, t["outer_out"], issued["token"], direction="out")["reason"] == "unknown_key"
    bundle = Api(client, t["outer_in"]).get("/passes/gate/bundle").get_json()["data"]
    assert [k["kid"] for k in bundle["keys"]["keys"]] == [new_kid]
    assert issued["id"] in bundle["revocations"]["pass_ids"]
    fresh = db.scalars(select(PassCredential).where(PassCredential.replaces_id == issued["id"])).one()
    assert fresh.kid == new_kid
    assert scan(api, t["outer_out"], fresh.token, direction="out")["result"] == "ok"

    again = officer.post(f"{path}/{old_kid}/revoke")
    assert again.get_json()["data"] == {"kid": old_kid, "status": "revoked", "reissued": 0}
    assert officer.post(f"{path}/nokid/revoke").status_code == 404
    other_scope = keys.signing_ring(
        db, key_scope(world.event.id + 999), app.extensions["zhizhi"].settings.signing_kek
    )
    assert officer.post(f"{path}/{other_scope.active.kid}/revoke").status_code == 404
