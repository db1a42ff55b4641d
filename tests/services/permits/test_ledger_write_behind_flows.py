"""Write-behind ledger flows over the API: waybills and permits, stocktakes, corrections,
membership changes, dead letters, concurrency (real Redis and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from models.permits.applications import Permit
from models.permits.ledger import LedgerEvent
from services.permits import ledger, ledger_drain, waybills
from tests.helpers import Api, token_for
from tests.services.permits.factories import NOW, actor, build_world, purchase, transport
from tests.services.permits.test_ledger_write_behind import _api, _body, _book, _events, _pending


def _waybill(db, w, qty="1000"):
    pp = purchase(db, w, quantity=Decimal(qty))
    _a, tp = transport(db, w, pp, quantity=Decimal(qty))
    wb = waybills.create(
        db, actor(db, w.seller_mgr), tp.id, quantity=Decimal(qty), eta=NOW + timedelta(hours=8)
    )
    return pp, tp, wb


def test_hot_ship_1000_receive_900_draws_the_permits_and_opens_a_mismatch_warning(
    app, committed_db, kek, hot
):
    # Real commits (separate connections, as in production): a refused request must not
    # take back what a drain during it committed.
    s = committed_db
    world = build_world(s, kek)
    client = app.test_client()
    seller, buyer = _api(client, s, world.seller_mgr), _api(client, s, world.buyer_mgr)
    regulator = _api(client, s, world.regulator)
    pp, tp, wb = _waybill(s, world)
    s.commit()
    seller_events, buyer_events = (f"/permits/enterprises/{e.id}/events" for e in (world.seller, world.buyer))
    assert seller.post(seller_events, _body(world, "p", "1000")).status_code == 201
    over = seller.post(seller_events, _body(world, "s0", "1001", kind="ship", waybill_id=wb.id))
    assert over.status_code == 422 and over.json["error"]["code"] == "quantity_over_permit"
    assert over.json["error"]["message"] == f"数量 1001 超过许可/备案 {pp.number} 剩余量 1000.000"
    shipped = seller.post(seller_events, _body(world, "s", "1000", kind="ship", waybill_id=wb.id))
    assert shipped.status_code == 201 and shipped.json["data"]["balance_after"] == "0.000"
    twice = seller.post(seller_events, _body(world, "s2", "1", kind="ship", waybill_id=wb.id))
    assert twice.status_code == 409 and twice.json["error"]["code"] == "waybill_step_already_reported"
    recv = buyer.post(buyer_events, _body(world, "r", "900", kind="receive", waybill_id=wb.id))
    assert recv.status_code == 201 and _pending(hot) >= 1
    warnings = regulator.get("/permits/warnings").json["data"]  # settles first
    assert {w["risk_type"] for w in warnings} == {"waybill_mismatch"} and _pending(hot) == 0
    risk = buyer.get(f"/permits/enterprises/{world.buyer.id}/risk").json["data"]
    assert risk["colour"] == "yellow" and risk["signals"][0]["inputs"]["received"] == "900.000"
    s.expire_all()
    assert s.get(Permit, pp.id).remaining == Decimal("0") and s.get(Permit, tp.id).remaining == Decimal("0")
    assert [str(e.balance_after) for e in s.scalars(select(LedgerEvent).order_by(LedgerEvent.id))] == [
        "1000.000", "0.000", "900.000",
    ]  # fmt: skip


def test_a_new_member_can_file_at_once_on_the_hot_path(client, db, world, hot):
    from services.permits import enterprises

    clerk = world.buyer_mgr  # an enterprise user, not (yet) of the seller
    body = _body(world, "m-1")
    path = f"/permits/enterprises/{world.seller.id}/events"
    api = _api(client, db, clerk)
    assert api.post(path, body).json["error"]["code"] == "not_enterprise_member"  # now cached
    enterprises.add_member(db, actor(db, world.seller_mgr), world.seller.id, clerk.id, "warehouse")
    assert api.post(path, body).status_code == 201  # the membership change reset the caches


def test_an_idempotency_key_header_replays_the_stored_answer(client, db, world, hot):
    api = _api(client, db, world.seller_mgr)
    path = f"/permits/enterprises/{world.seller.id}/events"
    headers = {"Idempotency-Key": "hdr-1"}
    first = api.post(path, _body(world, "h-1"), headers=headers)
    again = api.post(path, _body(world, "h-1"), headers=headers)
    assert first.status_code == again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert ledger_drain.settle(hot) == 1 and _events(db) == 1


def test_an_entry_the_database_refuses_moves_to_the_dead_letter_stream_and_the_rest_flows(
    app, client, db, world, hot, caplog
):
    api = _api(client, db, world.seller_mgr)
    path = f"/permits/enterprises/{world.seller.id}/events"
    api.post(path, _body(world, "ok-1"))
    v = hot.redis.xrange(hot.keys.stream)[0][1][b"d"].decode().split("|", 18)
    v[0], v[10], v[18] = str(int(v[0]) + 10**6), "2147483000", "poison"
    bad = {"d": "|".join(v)}
    hot.redis.xadd(hot.keys.stream, bad)  # refers to no enterprise: a foreign-key violation
    api.post(path, _body(world, "ok-2"))
    for _ in range(ledger_drain.DEAD_AFTER):
        ledger_drain.flush(app)
    assert hot.redis.xlen(hot.keys.dead) == 1 and "dead-letter" in caplog.text
    assert ledger_drain.flush(app) == 1  # the event behind it
    keys = set(db.scalars(select(LedgerEvent.idempotency_key)))
    assert keys == {"ok-1", "ok-2"} and _pending(hot) == 0


def test_concurrent_hot_shipments_cannot_overdraw_the_purchase_permit(app, committed_db, kek, hot):

    s = committed_db
    world = build_world(s, kek)
    ledger.file_event(
        s, actor(s, world.seller_mgr), world.seller.id, kind="produce", chemical_id=world.toluene.id,
        quantity=Decimal("5000"), unit="kg", idempotency_key="stock",
    )  # fmt: skip
    pp = purchase(s, world, quantity=Decimal("1000"))
    _a, tp = transport(s, world, pp, quantity=Decimal("1000"))
    eta = NOW + timedelta(hours=4)
    bills = [
        waybills.create(s, actor(s, world.seller_mgr), tp.id, quantity=Decimal("600"), eta=eta).id
        for _ in "ab"
    ]
    token = token_for(s, world.seller_mgr)
    s.commit()
    barrier, outcomes = threading.Barrier(2), []

    def ship(wb_id: int) -> None:
        api = Api(app.test_client(), token)
        barrier.wait()
        body = _body(world, f"ship-{wb_id}", "600", kind="ship", waybill_id=wb_id)
        r = api.post(f"/permits/enterprises/{world.seller.id}/events", body)
        outcomes.append(r.json["data"]["kind"] if r.status_code == 201 else r.json["error"]["code"])

    threads = [threading.Thread(target=ship, args=(b,)) for b in bills]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["quantity_over_permit", "ship"]
    ledger_drain.settle(hot)
    s.expire_all()
    assert s.get(Permit, pp.id).remaining == Decimal("400")


def test_a_hot_stocktake_outside_tolerance_opens_the_mass_balance_warning(client, db, world, hot):
    from models.permits.risk import RiskSignal

    api = _api(client, db, world.seller_mgr)
    path = f"/permits/enterprises/{world.seller.id}/events"
    api.post(path, _body(world, "in", "1000"))
    counted = api.post(path, _body(world, "count", "950", kind="stocktake")).json["data"]
    assert (counted["balance_after"], counted["variance"]) == ("950.000", "-50.000")
    risk = api.get(f"/permits/enterprises/{world.seller.id}/risk").json["data"]  # settles first
    assert risk["colour"] == "yellow" and risk["signals"][0]["inputs"]["book"] == "1000.000"
    sig = db.scalar(select(RiskSignal).where(RiskSignal.model == "mass_balance"))
    assert sig.inputs["event_id"] == counted["id"] and _book(db, world) == Decimal("950.000")


def test_a_correction_of_a_hot_filed_event_is_approved_and_moves_the_book(client, db, world, hot):
    from services.permits import enterprises
    from tests.helpers import make_person

    api = _api(client, db, world.seller_mgr)
    path = f"/permits/enterprises/{world.seller.id}/events"
    ev = api.post(path, _body(world, "in", "100")).json["data"]
    corr = api.post(
        f"/permits/events/{ev['id']}/corrections",
        {"quantity": "90", "reason": "称重错误", "idempotency_key": "c"},
    )
    assert corr.status_code == 201, corr.json
    second = make_person(db, org=world.org, name="第二专管员")
    enterprises.add_member(db, actor(db, world.seller_mgr), world.seller.id, second.id, "manager")
    done = _api(client, db, second).post(f"/permits/events/{corr.json['data']['id']}/approve")
    assert done.status_code == 200 and done.json["data"]["balance_after"] == "90.000"
    after = api.post(path, _body(world, "in2", "5")).json["data"]  # the cached book was forgotten
    assert after["balance_after"] == "95.000"
