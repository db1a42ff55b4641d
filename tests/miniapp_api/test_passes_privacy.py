"""What a citizen may see of verification: a generic outcome, never the watch or trust
lists' results, and never another person's application behind a duplicate refusal."""

from __future__ import annotations

import json

import pytest

from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.services.passes.builders import visitor_body

GENERIC_REJECT = "未通过审核，如有疑问请联系主办方"


@pytest.fixture
def citizen(db, client):
    return Api(client, token_for(db, make_person(db, "citizen")))


def _apply(api, world, body):
    return api.post(f"/passes/events/{world.event.id}/applications", body)


def _watch(officer, world, **entry):
    resp = officer.post("/passes/watch-entries", {"event_id": world.event.id, "reason": "在逃人员", **entry})
    assert resp.status_code == 201, resp.get_json()


def _leaks_lists(data) -> bool:
    text = json.dumps(data, ensure_ascii=False)
    return any(w in text for w in ("关注", "watch", "trust", "信任", "在逃"))


def test_a_watch_list_rejection_shows_the_citizen_only_a_generic_reason(db, world, citizen):
    idn = valid_id_number(90)
    officer = Api(citizen.client, world.officer_token)
    _watch(officer, world, severity="reject", id_number=idn)
    resp = _apply(citizen, world, visitor_body(idn))
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()["data"]
    assert data["status"] == "rejected"
    assert data["result_message"] == GENERIC_REJECT
    assert data["rules"] is None
    assert not _leaks_lists(data)
    again = citizen.get(f"/passes/applications/{data['id']}").get_json()["data"]
    assert again["rules"] is None and not _leaks_lists(again)
    listed = citizen.get("/passes/applications").get_json()["data"]["items"]
    assert not _leaks_lists(listed)

    full = officer.get(f"/passes/applications/{data['id']}").get_json()["data"]
    watch = next(r for r in full["rules"] if r["rule"] == "watchlist")
    assert watch["reason_code"] == "watch_exact_reject"
    assert watch["message"] == "命中关注名单（拒绝通行）"  # not "命中关注名单：命中关注名单（拒绝通行）"


def test_partial_match_and_trust_results_stay_with_the_officers(db, world, citizen):
    idn = valid_id_number(91)
    officer = Api(citizen.client, world.officer_token)
    birth = f"{idn[6:10]}-{idn[10:12]}-{idn[12:14]}"
    _watch(officer, world, severity="alert", name="张三", birth_date=birth)
    data = _apply(citizen, world, visitor_body(idn)).get_json()["data"]
    assert data["status"] == "manual_review"
    assert data["result_message"] == "需人工审核，请耐心等待"
    assert not _leaks_lists(data)
    queue = officer.get(f"/passes/events/{world.event.id}/review-queue").get_json()["data"]["items"]
    codes = {r["reason_code"] for r in queue[0]["rules"]}
    assert "watch_partial" in codes
    decided = officer.post(f"/passes/applications/{data['id']}/decision", {"approve": False, "note": "核实"})
    assert decided.get_json()["data"]["rules"]  # the officer's answer keeps every rule
    mine = citizen.get(f"/passes/applications/{data['id']}").get_json()["data"]
    assert mine["status"] == "rejected" and mine["result_message"] == GENERIC_REJECT
    assert not _leaks_lists(mine) and "核实" not in json.dumps(mine, ensure_ascii=False)


def test_a_citizen_still_learns_what_was_wrong_with_their_own_input(db, world, citizen):
    from datetime import date

    data = _apply(citizen, world, visitor_body(valid_id_number(92), day=date(2030, 1, 1))).get_json()["data"]
    assert data["status"] == "rejected"
    assert data["result_message"] == "来访日期不在活动期间内"
    ok = _apply(citizen, world, visitor_body(valid_id_number(93))).get_json()["data"]
    assert ok["status"] == "approved" and ok["result_message"] == "审核通过"


def test_a_duplicate_of_someone_elses_application_reveals_nothing_about_it(db, world, citizen):
    idn = valid_id_number(94)
    first = _apply(citizen, world, visitor_body(idn)).get_json()["data"]
    stranger = Api(citizen.client, token_for(db, make_person(db, "citizen")))
    resp = _apply(stranger, world, visitor_body(idn))
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "duplicate_application"
    assert "details" not in error
    assert str(first["id"]) not in error["message"] and "approved" not in json.dumps(error)

    own = _apply(citizen, world, visitor_body(idn)).get_json()["error"]
    assert own["code"] == "duplicate_application"
    assert own["details"] == {"existing_application_id": first["id"], "status": "approved"}


def test_a_group_member_who_already_applied_elsewhere_reveals_nothing(db, world, citizen):
    idn = valid_id_number(95)
    _apply(citizen, world, visitor_body(idn))
    leader = Api(citizen.client, token_for(db, make_person(db, "citizen")))
    body = {k: v for k, v in visitor_body(idn).items() if k not in ("kind", "name", "id_number", "mobile")}
    members = [{"name": "甲", "id_number": idn, "mobile": "13900000000"}]
    resp = leader.post(
        f"/passes/events/{world.event.id}/group-applications", {**body, "name": "团", "members": members}
    )
    assert resp.status_code == 409
    assert "details" not in resp.get_json()["error"]
