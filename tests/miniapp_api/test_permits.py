from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.db import utcnow
from models.permits.applications import Application, Permit
from models.permits.enterprises import Enterprise
from models.permits.ledger import LedgerEvent
from services.permits import ledger, ledger_drain, waybills
from services.permits.issuing import local_date
from tests.helpers import Api, make_person, token_for
from tests.services.permits.factories import NOW, TODAY, actor, build_world, purchase, transport


@pytest.fixture
def world(db, app):
    return build_world(db, app.extensions["zhizhi"].settings.signing_kek)


def _count(db, model) -> int:
    ledger_drain.settle_for(db)  # write-behind filings land before the count
    return db.scalar(select(func.count(model.id)))


def _api(client, db, person) -> Api:
    return Api(client, token_for(db, person))


def _transport_body(w, pp, **over):
    today = local_date(utcnow())
    body = {
        "enterprise_id": w.buyer.id,
        "purchase_permit_id": pp.id,
        "carrier_enterprise_id": w.carrier.id,
        "vehicle_id": w.vehicle.id,
        "plate": "浙F12345",
        "driver_id": w.driver.id,
        "quantity": "800",
        "unit": "kg",
        "window_start": today.isoformat(),
        "window_end": (today + timedelta(days=1)).isoformat(),
    }
    body.update(over)
    return body


def test_bad_credit_code_is_refused_and_nothing_is_registered(client, db):
    person = make_person(db, name="申请人")
    before = _count(db, Enterprise)
    resp = _api(client, db, person).post(
        "/permits/enterprises", {"name": "坏代码公司", "uscc": "91330483MA0000000X", "kind": "trader"}
    )
    assert resp.status_code == 422
    assert resp.json["error"]["code"] == "invalid_uscc" and "uscc" in resp.json["error"]["fields"]
    assert _count(db, Enterprise) == before


def test_transport_api_issues_category_3_filing_with_qr_that_verifies_publicly(client, db, world):
    pp = purchase(db, world)
    resp = _api(client, db, world.buyer_mgr).post(
        "/permits/applications/transport", _transport_body(world, pp)
    )
    assert resp.status_code == 201, resp.json
    permit = resp.json["data"]["permit"]
    assert resp.json["data"]["status"] == "issued" and permit["form"] == "filing"
    public = Api(client).post("/permits/verify", {"token": permit["qr"]})
    assert public.json["data"]["status"] == "valid"
    assert set(public.json["data"]) >= {"number", "chemical", "quantity", "valid_until", "issuing_authority"}
    assert "driver" not in str(public.json["data"]) and "applicant" not in public.json["data"]
    assert Api(client).get(f"/permits/verify/{permit['number']}").json["data"]["number"] == permit["number"]


def test_instant_check_failure_lists_reasons_and_issues_nothing(client, db, kek_world_expired):
    w, pp = kek_world_expired
    before = _count(db, Permit)
    resp = _api(client, db, w.buyer_mgr).post("/permits/applications/transport", _transport_body(w, pp))
    assert resp.status_code == 422
    err = resp.json["error"]
    assert err["code"] == "instant_check_failed"
    assert [r["code"] for r in err["details"]["reasons"]] == ["driver_qualification_expired"]
    assert _count(db, Permit) == before
    assert db.scalar(select(Application).order_by(Application.id.desc())).status.value == "refused"


@pytest.fixture
def kek_world_expired(db, app):
    w = build_world(
        db, app.extensions["zhizhi"].settings.signing_kek, qualification_until=TODAY - timedelta(days=3)
    )
    return w, purchase(db, w)


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"chemical_id": 999999}, "unknown_chemical"),
        ({"quantity": "0"}, "invalid_quantity"),
        ({"quantity": "-3"}, "invalid_quantity"),
        ({"unit": "t"}, "unit_mismatch"),
    ],
)
def test_bad_event_input_is_refused_with_reason_and_nothing_filed(client, db, world, over, code):
    body = {
        "kind": "produce",
        "chemical_id": world.toluene.id,
        "quantity": "10",
        "unit": "kg",
        "idempotency_key": "x",
    }
    body.update(over)
    resp = _api(client, db, world.seller_mgr).post(f"/permits/enterprises/{world.seller.id}/events", body)
    assert resp.status_code == 422 and resp.json["error"]["code"] == code
    assert _count(db, LedgerEvent) == 0


def test_another_enterprises_credential_is_refused_and_nothing_filed(client, db, world):
    pp = purchase(db, world)
    before = _count(db, Application)
    from services.permits import credentials

    foreign = credentials.add_vehicle(db, actor(db, world.seller_mgr), world.seller.id, "浙F77777", "yellow")
    resp = _api(client, db, world.buyer_mgr).post(
        "/permits/applications/transport", _transport_body(world, pp, vehicle_id=foreign.id)
    )
    assert resp.status_code == 422 and resp.json["error"]["code"] == "credential_not_owned"
    assert _count(db, Application) == before


def test_same_event_posted_twice_is_filed_once(client, db, world):
    api = _api(client, db, world.seller_mgr)
    body = {
        "kind": "produce",
        "chemical_id": world.toluene.id,
        "quantity": "10",
        "unit": "kg",
        "idempotency_key": "e-1",
    }
    first = api.post(f"/permits/enterprises/{world.seller.id}/events", body)
    second = api.post(f"/permits/enterprises/{world.seller.id}/events", body)
    assert first.status_code == second.status_code == 201
    assert first.json["data"]["id"] == second.json["data"]["id"] and second.json["data"]["created"] is False
    assert _count(db, LedgerEvent) == 1


def test_enterprise_a_manager_cannot_read_enterprise_b_ledger_over_the_api(client, db, world):
    resp = _api(client, db, world.buyer_mgr).get(f"/permits/enterprises/{world.seller.id}/events")
    assert resp.status_code == 403 and resp.json["error"]["code"] == "not_enterprise_member"
    own = _api(client, db, world.seller_mgr).get(f"/permits/enterprises/{world.seller.id}/events")
    assert own.status_code == 200 and own.json["data"] == {"items": [], "next_cursor": None}


def test_waybill_closed_twice_is_refused(client, db, world):
    from decimal import Decimal

    def file(who, ent, kind, key, wb=None):
        ledger.file_event(
            db,
            actor(db, who),
            ent.id,
            kind=kind,
            chemical_id=world.toluene.id,
            quantity=Decimal("500"),
            unit="kg",
            idempotency_key=key,
            waybill_id=wb,
            now=NOW,
        )

    file(world.seller_mgr, world.seller, "produce", "p")
    pp = purchase(db, world, quantity=Decimal("500"))
    _a, tp = transport(db, world, pp, quantity=Decimal("500"))
    wb = waybills.create(db, actor(db, world.seller_mgr), tp.id, quantity=Decimal("500"), eta=NOW)
    file(world.seller_mgr, world.seller, "ship", "s", wb.id)
    file(world.driver, world.carrier, "depart", "d", wb.id)
    file(world.driver, world.carrier, "arrive", "a", wb.id)
    file(world.buyer_mgr, world.buyer, "receive", "r", wb.id)
    api = _api(client, db, world.buyer_mgr)
    assert api.post(f"/permits/waybills/{wb.id}/close").status_code == 200
    again = api.post(f"/permits/waybills/{wb.id}/close")
    assert again.status_code == 409 and again.json["error"]["code"] == "waybill_already_closed"


def test_risk_code_is_explained(client, db, world):
    resp = _api(client, db, world.seller_mgr).get(f"/permits/enterprises/{world.seller.id}/risk")
    assert resp.json["data"] == {"colour": "green", "signals": []}


def test_cross_tenant_member_of_a_cannot_file_for_b(client, db, world):
    body = {
        "kind": "produce",
        "chemical_id": world.toluene.id,
        "quantity": "1",
        "unit": "kg",
        "idempotency_key": "z",
    }
    resp = _api(client, db, world.buyer_mgr).post(f"/permits/enterprises/{world.seller.id}/events", body)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "not_enterprise_member"
    assert _count(db, LedgerEvent) == 0


def test_category_1_purchase_waits_for_regulator_decision_over_the_api(client, db, world):
    body = {
        "enterprise_id": world.buyer.id,
        "seller_enterprise_id": world.seller.id,
        "chemical_id": world.ephedrine.id,
        "quantity": "5",
        "unit": "kg",
    }
    resp = _api(client, db, world.buyer_mgr).post("/permits/applications/purchase", body)
    assert resp.status_code == 201 and resp.json["data"]["status"] == "pending_review"
    assert resp.json["data"]["permit"] is None
    reg = _api(client, db, world.regulator)
    queue = reg.get("/permits/review-queue").json["data"]
    assert [a["id"] for a in queue] == [resp.json["data"]["id"]]
    decided = reg.post(f"/permits/applications/{queue[0]['id']}/decision", {"approve": True, "note": "同意"})
    assert decided.status_code == 200 and decided.json["data"]["permit"]["form"] == "permit"
    assert _api(client, db, world.buyer_mgr).get("/permits/review-queue").status_code == 403


def test_mismatch_shows_in_the_explained_risk_code_and_the_warning_list(client, db, world):
    from decimal import Decimal

    def file(who, ent, kind, qty, key, wb=None):
        ledger.file_event(
            db,
            actor(db, who),
            ent.id,
            kind=kind,
            chemical_id=world.toluene.id,
            quantity=Decimal(qty),
            unit="kg",
            idempotency_key=key,
            waybill_id=wb,
            now=NOW,
        )

    file(world.seller_mgr, world.seller, "produce", "1000", "p")
    pp = purchase(db, world)
    _a, tp = transport(db, world, pp)
    wb = waybills.create(db, actor(db, world.seller_mgr), tp.id, quantity=Decimal("1000"), eta=NOW)
    file(world.seller_mgr, world.seller, "ship", "1000", "s", wb.id)
    file(world.buyer_mgr, world.buyer, "receive", "900", "r", wb.id)
    risk = _api(client, db, world.buyer_mgr).get(f"/permits/enterprises/{world.buyer.id}/risk").json["data"]
    assert risk["colour"] == "yellow"
    sig = risk["signals"][0]
    assert sig["model"] == "waybill_mismatch" and sig["inputs"]["received"] == "900.000"
    assert sig["threshold"] == {"tolerance_pct": 1.0} and sig["rule"] and sig["reevaluate_at"]
    listed = _api(client, db, world.regulator).get("/permits/warnings").json["data"]
    assert {w["risk_type"] for w in listed} == {"waybill_mismatch"} and all(
        w["department"] == "police" for w in listed
    )
