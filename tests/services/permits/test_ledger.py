from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.errors import Conflict, Forbidden, ValidationFailed
from models.permits.ledger import LedgerEvent, WaybillStatus
from models.permits.risk import RiskSignal, Warning
from services.permits import ledger, risk_colour, waybills
from tests.services.permits.factories import NOW, actor, purchase, transport


def _file(db, w, who, ent, kind, qty, key, **kw):
    return ledger.file_event(
        db,
        actor(db, who),
        ent.id,
        kind=kind,
        chemical_id=w.toluene.id,
        quantity=Decimal(qty),
        unit="kg",
        idempotency_key=key,
        now=NOW,
        **kw,
    )


def _waybill(db, w, qty="1000"):
    pp = purchase(db, w, quantity=Decimal(qty))
    _app, tp = transport(db, w, pp, quantity=Decimal(qty))
    wb = waybills.create(
        db, actor(db, w.seller_mgr), tp.id, quantity=Decimal(qty), eta=NOW + timedelta(hours=8)
    )
    return pp, tp, wb


def test_same_event_submitted_twice_with_same_key_is_filed_once(db, world):
    first, created = _file(db, world, world.seller_mgr, world.seller, "produce", "100", "k-1")
    again, created_again = _file(db, world, world.seller_mgr, world.seller, "produce", "100", "k-1")
    assert created and not created_again and again.id == first.id
    assert db.scalar(select(func.count(LedgerEvent.id))) == 1
    assert first.balance_after == Decimal("100")


def test_same_key_with_a_different_event_is_a_conflict(db, world):
    _file(db, world, world.seller_mgr, world.seller, "produce", "100", "k-1")
    with pytest.raises(Conflict) as err:
        _file(db, world, world.seller_mgr, world.seller, "produce", "101", "k-1")
    assert err.value.code == "idempotency_key_reused"


def test_mass_balance_holds_and_out_events_cannot_exceed_stock(db, world):
    _file(db, world, world.seller_mgr, world.seller, "produce", "100", "a")
    ev, _ = _file(db, world, world.seller_mgr, world.seller, "destroy", "30", "b")
    assert ev.balance_after == Decimal("70")
    with pytest.raises(ValidationFailed) as err:
        _file(db, world, world.seller_mgr, world.seller, "destroy", "71", "c")
    assert err.value.code == "stock_insufficient"


def test_stocktake_outside_tolerance_opens_mass_balance_warning(db, world):
    _file(db, world, world.seller_mgr, world.seller, "produce", "1000", "a")
    ev, _ = _file(db, world, world.seller_mgr, world.seller, "stocktake", "950", "b")
    assert ev.variance == Decimal("-50")
    sig = db.scalar(select(RiskSignal).where(RiskSignal.model == "mass_balance"))
    assert sig.inputs["book"] == "1000.000" and sig.threshold == {"tolerance_pct": 2.0}
    assert db.scalar(select(Warning).where(Warning.signal_id == sig.id)).department == "police"


def test_ship_1000_receive_900_opens_mismatch_warning(db, world):
    _file(db, world, world.seller_mgr, world.seller, "produce", "1000", "p")
    pp, _tp, wb = _waybill(db, world)
    _file(db, world, world.seller_mgr, world.seller, "ship", "1000", "s", waybill_id=wb.id)
    db.refresh(pp)
    assert pp.remaining == Decimal("0")
    _file(db, world, world.buyer_mgr, world.buyer, "receive", "900", "r", waybill_id=wb.id)
    assert wb.status == WaybillStatus.mismatch
    sig = db.scalar(
        select(RiskSignal).where(
            RiskSignal.model == "waybill_mismatch", RiskSignal.enterprise_id == world.buyer.id
        )
    )
    assert sig.inputs["shipped"] == "1000.000" and sig.inputs["received"] == "900.000"
    assert db.scalar(select(Warning).where(Warning.signal_id == sig.id)) is not None
    assert risk_colour.enterprise_colour(db, world.buyer.id) == "yellow"


def test_ship_cannot_overdraw_the_permit(db, world):
    _file(db, world, world.seller_mgr, world.seller, "produce", "5000", "p")
    _pp, _tp, wb = _waybill(db, world, qty="1000")
    with pytest.raises(ValidationFailed) as err:
        _file(db, world, world.seller_mgr, world.seller, "ship", "1001", "s", waybill_id=wb.id)
    assert err.value.code == "quantity_over_permit"


def test_waybill_closes_once_when_three_parties_agree(db, world):
    _file(db, world, world.seller_mgr, world.seller, "produce", "1000", "p")
    _pp, _tp, wb = _waybill(db, world)
    _file(db, world, world.seller_mgr, world.seller, "ship", "1000", "s", waybill_id=wb.id)
    _file(db, world, world.driver, world.carrier, "depart", "1000", "d", waybill_id=wb.id)
    _file(db, world, world.driver, world.carrier, "arrive", "1000", "a", waybill_id=wb.id)
    _file(db, world, world.buyer_mgr, world.buyer, "receive", "1000", "r", waybill_id=wb.id)
    assert waybills.close(db, actor(db, world.buyer_mgr), wb.id, now=NOW).status == WaybillStatus.closed
    with pytest.raises(Conflict) as err:
        waybills.close(db, actor(db, world.buyer_mgr), wb.id, now=NOW)
    assert err.value.code == "waybill_already_closed"


def test_correction_needs_a_second_person(db, world):
    wh = world.seller_mgr
    ev, _ = _file(db, world, wh, world.seller, "produce", "100", "p")
    corr = ledger.request_correction(
        db, actor(db, wh), ev.id, quantity=Decimal("90"), reason="称重错误", idempotency_key="c"
    )
    with pytest.raises(Forbidden) as err:
        ledger.approve_correction(db, actor(db, wh), corr.id, now=NOW)
    assert err.value.code == "second_person_required"
    from services.permits import enterprises
    from tests.helpers import make_person

    second = make_person(db, org=world.org, name="第二专管员")
    enterprises.add_member(db, actor(db, wh), world.seller.id, second.id, "manager")
    done = ledger.approve_correction(db, actor(db, second), corr.id, now=NOW)
    assert done.balance_after == Decimal("90") and ev.quantity == Decimal("100")


def test_enterprise_a_manager_cannot_read_enterprise_b_ledger(db, world):
    _file(db, world, world.seller_mgr, world.seller, "produce", "100", "p")
    with pytest.raises(Forbidden) as err:
        ledger.list_events(db, actor(db, world.buyer_mgr), world.seller.id)
    assert err.value.code == "not_enterprise_member"
    rows = ledger.list_events(db, actor(db, world.regulator), world.seller.id)
    assert len(rows) == 1


def test_unknown_chemical_is_refused(db, world):
    with pytest.raises(ValidationFailed) as err:
        ledger.file_event(
            db,
            actor(db, world.seller_mgr),
            world.seller.id,
            kind="produce",
            chemical_id=99999,
            quantity=Decimal(1),
            unit="kg",
            idempotency_key="x",
            now=NOW,
        )
    assert err.value.code == "unknown_chemical"


def test_a_later_stocktake_within_tolerance_resolves_the_mass_balance_signal(db, world):
    _file(db, world, world.seller_mgr, world.seller, "produce", "1000", "a")
    _file(db, world, world.seller_mgr, world.seller, "stocktake", "950", "b")
    assert risk_colour.enterprise_colour(db, world.seller.id) == "yellow"
    _file(db, world, world.seller_mgr, world.seller, "stocktake", "951", "c")
    assert risk_colour.enterprise_colour(db, world.seller.id) == "green"
