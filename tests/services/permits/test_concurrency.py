"""Concurrent shipments against one permit (PostgreSQL: real row locks and commits)."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from core.errors import ValidationFailed
from models.permits.applications import Permit
from services.permits import ledger, waybills
from tests.services.permits.factories import NOW, actor, build_world, purchase, transport


def test_concurrent_shipments_cannot_overdraw_the_purchase_permit(app, committed_db):
    if committed_db.get_bind().dialect.name != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    ext = app.extensions["zhizhi"]
    s = committed_db
    w = build_world(s, ext.settings.signing_kek)
    ledger.file_event(
        s,
        actor(s, w.seller_mgr),
        w.seller.id,
        kind="produce",
        chemical_id=w.toluene.id,
        quantity=Decimal("5000"),
        unit="kg",
        idempotency_key="stock",
        now=NOW,
    )
    pp = purchase(s, w, quantity=Decimal("1000"))
    _a, tp = transport(s, w, pp, quantity=Decimal("1000"))
    bills = [
        waybills.create(
            s, actor(s, w.seller_mgr), tp.id, quantity=Decimal("600"), eta=NOW + timedelta(hours=4)
        ).id
        for _ in range(2)
    ]
    s.commit()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def ship(wb_id: int) -> None:
        session = ext.db.sessionmaker()
        try:
            me = actor(session, w.seller_mgr)
            barrier.wait()
            ledger.file_event(
                session,
                me,
                w.seller.id,
                kind="ship",
                chemical_id=w.toluene.id,
                quantity=Decimal("600"),
                unit="kg",
                idempotency_key=f"ship-{wb_id}",
                waybill_id=wb_id,
                now=NOW,
            )
            session.commit()
            outcomes.append("ok")
        except ValidationFailed as exc:
            session.rollback()
            outcomes.append(exc.code)
        finally:
            session.close()

    threads = [threading.Thread(target=ship, args=(b,)) for b in bills]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok", "quantity_over_permit"]
    s.expire_all()
    assert s.get(Permit, pp.id).remaining == Decimal("400")
