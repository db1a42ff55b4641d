from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.errors import Conflict, Forbidden
from models.permits.risk import SignalStatus, WarningStatus
from models.platform import OutboxItem
from services.permits import ledger, ratings, risk_colour, warnings
from tests.helpers import make_person
from tests.services.permits.factories import NOW, actor


def _mass_balance_warning(db, w):
    for kind, qty, key in (("produce", "1000", "a"), ("stocktake", "900", "b")):
        ledger.file_event(
            db,
            actor(db, w.seller_mgr),
            w.seller.id,
            kind=kind,
            chemical_id=w.toluene.id,
            quantity=Decimal(qty),
            unit="kg",
            idempotency_key=key,
            now=NOW,
        )
    return warnings.list_for(db, actor(db, w.regulator))[0]


def test_warning_goes_through_acknowledge_handle_close_and_notifies_the_manager(db, world):
    w = _mass_balance_warning(db, world)
    assert w.department == "police" and w.status == WarningStatus.assigned
    assert w.due_at == NOW + timedelta(days=7)
    reg = actor(db, world.regulator)
    warnings.acknowledge(db, reg, w.id, now=NOW)
    warnings.answer(db, actor(db, world.seller_mgr), w.id, "盘点时漏计一桶")
    warnings.handle(db, reg, w.id, "已现场核查", now=NOW)
    with pytest.raises(Conflict):
        warnings.acknowledge(db, reg, w.id, now=NOW)
    warnings.close(db, reg, w.id, "整改到位", now=NOW)
    assert w.status == WarningStatus.closed
    assert risk_colour.enterprise_colour(db, world.seller.id) == "green"
    texts = list(db.scalars(select(OutboxItem.payload).where(OutboxItem.kind == "permits.notify")))
    assert any(p.get("warning_id") == w.id and p["enterprise_id"] == world.seller.id for p in texts)


def test_other_department_cannot_take_the_warning(db, world):
    w = _mass_balance_warning(db, world)
    transport_reg = make_person(db, "regulator", org=world.org, department="transport")
    with pytest.raises(Forbidden):
        warnings.acknowledge(db, actor(db, transport_reg), w.id, now=NOW)
    assert warnings.list_for(db, actor(db, world.buyer_mgr)) == []


def test_overdue_warning_escalates_once_per_level(db, world):
    w = _mass_balance_warning(db, world)
    later = w.due_at + timedelta(hours=1)
    assert warnings.escalate_overdue(db, later) == 1
    assert warnings.escalate_overdue(db, later) == 0
    assert w.escalation_level == 1
    assert warnings.escalate_overdue(db, later + timedelta(days=2)) == 1 and w.escalation_level == 2


def test_quarterly_rating_shows_weights_change_and_next_star(db, world):
    ratings.rate_quarter(db, world.seller.id, "2026Q3")
    _mass_balance_warning(db, world)
    from models.permits.credentials import Credential

    for cred in db.scalars(select(Credential).where(Credential.enterprise_id == world.seller.id)):
        cred.valid_until = NOW.date() - timedelta(days=1)
    db.flush()
    summary = ratings.summary(db, actor(db, world.seller_mgr), world.seller.id, "2026Q4")
    assert sum(i["weight"] for i in summary["indicators"]) == 100
    assert summary["stars"] == ratings.stars_for(summary["score"])
    assert summary["change"]["score"] < 0
    nxt = summary["next_star"]
    assert nxt["stars"] == summary["stars"] + 1 and nxt["points_needed"] > 0 and nxt["biggest_gains"]
    with pytest.raises(Forbidden):
        ratings.summary(db, actor(db, world.buyer_mgr), world.seller.id, "2026Q4")


def test_signal_is_resolved_when_warning_closes(db, world):
    w = _mass_balance_warning(db, world)
    from models.permits.risk import RiskSignal

    reg = actor(db, world.regulator)
    for step in (warnings.acknowledge,):
        step(db, reg, w.id, now=NOW)
    warnings.handle(db, reg, w.id, "ok", now=NOW)
    warnings.close(db, reg, w.id, "ok", now=NOW)
    assert db.get(RiskSignal, w.signal_id).status == SignalStatus.resolved


def test_invited_member_has_no_role_until_accepting(db, world):
    from services.permits import enterprises

    person = make_person(db, org=world.org, name="新库管")
    inv = enterprises.invite_member(db, actor(db, world.seller_mgr), world.seller.id, person.id, "warehouse")
    assert enterprises.member_roles(db, actor(db, person), world.seller.id) == set()
    with pytest.raises(Forbidden):
        enterprises.require_member(db, actor(db, person), world.seller.id)
    enterprises.accept_invitation(db, actor(db, person), inv.id)
    assert enterprises.member_roles(db, actor(db, person), world.seller.id) == {"warehouse"}
