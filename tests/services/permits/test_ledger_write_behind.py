"""The write-behind ledger (services/permits/ledger_hot.py, ledger_drain.py): one Redis call
per filing, drained into PostgreSQL exactly once; reads settle first; Redis down files
synchronously. Needs a real Redis and PostgreSQL (the embedded mode files synchronously)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from models.permits.applications import Permit
from models.permits.ledger import LedgerEvent, StockBalance
from models.platform import OutboxItem
from services.permits import hotsync, ledger, ledger_drain, waybills
from tests.helpers import Api, token_for
from tests.services.permits.factories import NOW, actor, build_world, purchase, transport


@pytest.fixture
def hot(app):
    h = hotsync.for_app(app)
    if h is None:
        pytest.skip("write-behind needs Redis and PostgreSQL (embedded mode files synchronously)")
    h._down_until = 0.0
    yield h
    h._down_until = 0.0  # a test that tripped the breaker must not leave it open


def _api(client, db, person) -> Api:
    return Api(client, token_for(db, person))


def _body(w, key: str, qty="10", kind="produce", **over) -> dict:
    return {
        "kind": kind,
        "chemical_id": w.toluene.id,
        "quantity": qty,
        "unit": "kg",
        "idempotency_key": key,
    } | over


def _events(db) -> int:
    return db.scalar(select(func.count(LedgerEvent.id)))


def _pending(hot) -> int:
    return hot.redis.xlen(hot.keys.stream)


def _book(db, w) -> Decimal:
    db.expire_all()
    return db.scalar(
        select(StockBalance.quantity).where(
            StockBalance.enterprise_id == w.seller.id, StockBalance.chemical_id == w.toluene.id
        )
    )


def _drain_once(hot, *, ack: bool) -> list:
    s = hot.db.sessionmaker()
    try:
        ids = ledger_drain.drain(s, hot)
        s.commit()
    finally:
        s.close()
    if ack:
        ledger_drain.ack(hot, ids)
    return ids


def test_filing_costs_one_redis_call_and_lands_exactly_once_after_two_drains(client, db, world, hot):
    api = _api(client, db, world.seller_mgr)
    path = f"/permits/enterprises/{world.seller.id}/events"
    answers = [
        api.post(path, _body(world, f"k{i}", qty)).json["data"] for i, qty in enumerate(("100", "20.5"))
    ]
    destroy = api.post(path, _body(world, "k2", "0.5", kind="destroy")).json["data"]
    assert [a["balance_after"] for a in (*answers, destroy)] == ["100.000", "120.500", "120.000"]
    assert _events(db) == 0 and _pending(hot) == 3  # accepted, not yet in the database

    first = _drain_once(hot, ack=False)  # committed, but the stream delete "got lost"
    again = _drain_once(hot, ack=True)  # the next drain sees the same entries
    assert len(first) == len(again) == 3 and _pending(hot) == 0
    rows = db.scalars(select(LedgerEvent).order_by(LedgerEvent.id)).all()
    assert [r.id for r in rows] == [a["id"] for a in (*answers, destroy)]
    assert [str(r.balance_after) for r in rows] == ["100.000", "120.500", "120.000"]
    assert _book(db, world) == Decimal("120.000")  # moved once, not twice


def test_a_drain_failing_mid_batch_keeps_the_entries_and_the_next_drain_files_them_once(
    client, db, world, hot, monkeypatch
):
    api = _api(client, db, world.seller_mgr)
    for i in range(3):
        assert (
            api.post(f"/permits/enterprises/{world.seller.id}/events", _body(world, f"f{i}")).status_code
            == 201
        )
    real_insert = ledger_drain._insert

    def insert_then_fail(session, fresh):
        real_insert(session, fresh)  # the rows are written inside the transaction...
        raise RuntimeError("database went away mid-batch")  # ...which then fails

    monkeypatch.setattr(ledger_drain, "_insert", insert_then_fail)
    with pytest.raises(RuntimeError):
        ledger_drain.settle(hot)
    assert _events(db) == 0 and _pending(hot) == 3
    monkeypatch.setattr(ledger_drain, "_insert", real_insert)
    assert ledger_drain.settle(hot) == 3
    assert _events(db) == 3 and _pending(hot) == 0 and _book(db, world) == Decimal("30.000")


def test_the_periodic_flush_is_registered_and_drains(app, client, db, world, hot):
    from jobs.periodic import periodic_table
    from jobs.schedule import permits_flush

    assert "permits_flush" in {p.name for p in periodic_table() if p.inline and p.cron == "* * * * *"}
    _api(client, db, world.seller_mgr).post(
        f"/permits/enterprises/{world.seller.id}/events", _body(world, "p")
    )
    with app.app_context():
        assert permits_flush(db, NOW) == {"moved": 1}
    assert _events(db) == 1


def test_a_read_sees_the_event_just_filed(client, db, world, hot):
    api = _api(client, db, world.seller_mgr)
    filed = api.post(f"/permits/enterprises/{world.seller.id}/events", _body(world, "r-1")).json["data"]
    listed = api.get(f"/permits/enterprises/{world.seller.id}/events").json["data"]["items"]
    assert [e["id"] for e in listed] == [filed["id"]]
    assert listed[0] == {k: v for k, v in filed.items() if k != "created"}  # the answer is the row


def test_a_replay_returns_the_first_answer_and_a_different_body_is_refused(client, db, world, hot):
    api = _api(client, db, world.seller_mgr)
    path = f"/permits/enterprises/{world.seller.id}/events"
    first = api.post(path, _body(world, "same"))
    replay = api.post(path, _body(world, "same"))
    ledger_drain.settle(hot)
    after_drain = api.post(path, _body(world, "same"))
    expected = first.get_data().replace(b'"created":true', b'"created":false')
    assert first.status_code == replay.status_code == after_drain.status_code == 201
    assert replay.get_data() == after_drain.get_data() == expected  # byte for byte, "created" aside
    other = api.post(path, _body(world, "same", qty="11"))
    assert other.status_code == 409 and other.json["error"]["code"] == "idempotency_key_reused"
    ledger_drain.settle(hot)
    assert _events(db) == 1 and _book(db, world) == Decimal("10.000")


def test_a_key_filed_synchronously_is_replayed_on_the_hot_path(client, db, world, hot):
    ev, _ = ledger.file_event(
        db, actor(db, world.seller_mgr), world.seller.id, kind="produce", chemical_id=world.toluene.id,
        quantity=Decimal("10"), unit="kg", idempotency_key="sync-1",
    )  # fmt: skip
    db.commit()  # the first answer is published after commit
    again = _api(client, db, world.seller_mgr).post(
        f"/permits/enterprises/{world.seller.id}/events", _body(world, "sync-1")
    )
    assert again.json["data"]["id"] == ev.id and again.json["data"]["created"] is False
    assert _pending(hot) == 0 and _events(db) == 1


def test_a_database_path_change_is_seen_by_the_next_hot_filing(client, db, world, hot):
    api = _api(client, db, world.seller_mgr)
    path = f"/permits/enterprises/{world.seller.id}/events"
    assert api.post(path, _body(world, "in", "100")).json["data"]["balance_after"] == "100.000"
    ledger.file_event(
        db,
        actor(db, world.seller_mgr),
        world.seller.id,
        kind="destroy",
        chemical_id=world.toluene.id,
        quantity=Decimal("30"),
        unit="kg",
        idempotency_key="out-sync",
    )  # fmt: skip  (drains first, then invalidates the cached book)
    refused = api.post(path, _body(world, "out", "71", kind="consume"))
    assert refused.status_code == 422 and refused.json["error"]["code"] == "stock_insufficient"
    assert refused.json["error"]["message"] == "库存不足：账面 70.000，本次 71.000"
    ok = api.post(path, _body(world, "out2", "70", kind="consume"))
    assert ok.json["data"]["balance_after"] == "0.000"


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


@pytest.mark.parametrize(
    ("over", "code", "status"),
    [
        ({"site_id": 2**31 - 1}, "site_not_owned", 422),
        ({"kind": "ship"}, "waybill_required", 422),
        ({"kind": "ship", "waybill_id": 2**31 - 1}, "waybill_not_found", 404),
        ({"kind": "destroy", "quantity": "5"}, "stock_insufficient", 422),
        ({"kind": "arrive"}, "waybill_required", 422),
        ({"kind": "teleport"}, "invalid_event_kind", 422),
    ],
)
def test_refusals_match_the_synchronous_path(client, db, world, hot, over, code, status):
    body = _body(world, "bad") | over
    hot_answer = _api(client, db, world.seller_mgr).post(
        f"/permits/enterprises/{world.seller.id}/events", body
    )
    assert hot_answer.status_code == status and _pending(hot) == 0
    hot.trip(ConnectionError("test"))  # the same request, filed synchronously
    sync_answer = _api(client, db, world.seller_mgr).post(
        f"/permits/enterprises/{world.seller.id}/events", body
    )
    assert sync_answer.status_code == status
    assert hot_answer.json["error"] == sync_answer.json["error"] and hot_answer.json["error"]["code"] == code


def test_redis_down_files_synchronously_and_the_resync_job_catches_redis_up(
    app, client, db, world, hot, monkeypatch
):
    ext = app.extensions["zhizhi"]
    api = _api(client, db, world.seller_mgr)
    path = f"/permits/enterprises/{world.seller.id}/events"
    api.post(path, _body(world, "before", "5"))  # Redis caches the book: 5
    ledger_drain.settle(hot)
    live = ext.redis
    monkeypatch.setattr(ext, "redis", redis_lib.Redis(port=1, socket_connect_timeout=0.2))
    down = api.post(path, _body(world, "during", "7"))
    assert down.status_code == 201 and down.json["data"]["balance_after"] == "12.000"
    assert _events(db) == 2  # filed in the database at once
    read = api.get(path)
    assert read.status_code == 503 and read.json["error"]["code"] == "ledger_sync_unavailable"
    resync = db.scalar(select(OutboxItem).where(OutboxItem.kind == hotsync.RESYNC_JOB))
    assert resync is not None and resync.payload["dedup"][0][1] == "during"

    monkeypatch.setattr(ext, "redis", live)
    hot._down_until = 0.0
    from jobs.permits import hot_resync

    with app.app_context():
        hot_resync(db, resync)
    replay = api.post(path, _body(world, "during", "7"))
    assert replay.json["data"] == {**down.json["data"], "created": False}
    after = api.post(path, _body(world, "after", "1"))  # the stale cached book (5) was forgotten
    assert after.json["data"]["balance_after"] == "13.000"
    listed = json.loads(api.get(path).get_data())["data"]["items"]
    assert sorted(e["idempotency_key"] for e in listed) == ["after", "before", "during"]


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
    import threading

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
