"""The write-behind ledger (services/permits/ledger_hot.py, ledger_drain.py): one Redis call
per filing, drained into PostgreSQL exactly once; reads settle first; Redis down files
synchronously. Needs a real Redis and PostgreSQL (the embedded mode files synchronously)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from models.permits.ledger import LedgerEvent, StockBalance
from models.platform import OutboxItem
from services.permits import hotsync, ledger, ledger_drain
from tests.helpers import Api, token_for
from tests.services.permits.factories import NOW, actor


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
