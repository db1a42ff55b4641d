"""Three-party waybills (一单贯通): seller ships, driver departs/arrives, buyer receives.

Shipping draws down the purchase and transport permits with a conditional UPDATE
(``remaining >= q``), so concurrent shipments can never overdraw a permit. The steps
must agree within tolerance: a mismatch, or a waybill open past ETA + grace, raises a
signal and opens a warning. Closing checks all three parties and happens once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.auth import Actor
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from models.permits.applications import Permit, PermitStatus, Purpose
from models.permits.ledger import EventKind, LedgerEvent, Waybill, WaybillStatus
from services.permits import rules, signals
from services.permits.catalogue import qty
from services.permits.enterprises import member_roles

STEP_FIELD = {
    EventKind.ship: "shipped",
    EventKind.depart: "departed",
    EventKind.arrive: "arrived",
    EventKind.receive: "received",
}
STEP_NAMES = {"shipped": "发货", "departed": "起运", "arrived": "到达", "received": "收货"}


def create(
    session: Session, actor: Actor, transport_permit_id: int, *, quantity: Decimal, eta: datetime
) -> Waybill:
    """Open a waybill under a valid transport permit (seller's or buyer's manager/sales)."""
    tp = session.get(Permit, transport_permit_id)
    if tp is None or tp.purpose != Purpose.transport:
        raise NotFound("运输许可/备案不存在", code="transport_permit_not_found")
    pp = session.get(Permit, tp.purchase_permit_id)
    parties = (pp.enterprise_id, pp.seller_enterprise_id)
    if not any(member_roles(session, actor, e) & {"manager", "sales"} for e in parties):
        raise Forbidden("只有购销双方的专管员或销售员可以开具运单", code="not_permit_party")
    if tp.status != PermitStatus.valid:
        raise Conflict("运输许可/备案当前不可用", code="transport_permit_not_valid")
    if Decimal(str(quantity)) <= 0 or Decimal(str(quantity)) > tp.remaining:
        msg = f"运单数量须大于0且不超过运输许可剩余量 {tp.remaining} {tp.unit}"
        raise ValidationFailed(msg, code="quantity_over_permit", fields={"quantity": msg})
    wb = Waybill(
        number="pending",
        transport_permit_id=tp.id,
        purchase_permit_id=pp.id,
        seller_id=pp.seller_enterprise_id,
        buyer_id=pp.enterprise_id,
        carrier_id=tp.carrier_enterprise_id,
        chemical_id=tp.chemical_id,
        planned=Decimal(str(quantity)),
        eta=eta,
    )
    session.add(wb)
    session.flush()
    wb.number = f"YD{wb.id:010d}"
    return wb


def _draw_down(session: Session, permit_id: int, qty: Decimal) -> None:
    done = session.execute(
        update(Permit)
        .where(Permit.id == permit_id, Permit.remaining >= qty, Permit.status == PermitStatus.valid)
        .values(remaining=Permit.remaining - qty)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        permit = session.get(Permit, permit_id)
        session.refresh(permit)
        msg = f"数量 {qty} 超过许可/备案 {permit.number} 剩余量 {permit.remaining}"
        raise ValidationFailed(msg, code="quantity_over_permit", fields={"quantity": msg})


def record_step(session: Session, ev: LedgerEvent, now: datetime) -> Waybill:
    """Attach ``ev`` to its waybill: the right party, once per step, permits drawn on ship."""
    if ev.waybill_id is None:
        raise ValidationFailed(
            "发货、起运、到达、收货事件必须关联运单", code="waybill_required", fields={"waybill_id": "必填"}
        )
    wb = session.get(Waybill, ev.waybill_id, with_for_update=True)
    if wb is None:
        raise NotFound("运单不存在", code="waybill_not_found")
    if wb.status == WaybillStatus.closed:
        raise Conflict("运单已闭环，不能再报送", code="waybill_closed")
    party = {EventKind.ship: wb.seller_id, EventKind.receive: wb.buyer_id}.get(ev.kind, wb.carrier_id)
    if ev.kind not in STEP_FIELD or ev.enterprise_id != party or ev.chemical_id != wb.chemical_id:
        raise ValidationFailed(
            "事件与运单的当事方或化学品不符",
            code="waybill_party_mismatch",
            fields={"waybill_id": "当事方不符"},
        )
    field = STEP_FIELD[ev.kind]
    if getattr(wb, field) is not None:
        raise Conflict(f"该运单已报送{STEP_NAMES[field]}", code="waybill_step_already_reported")
    setattr(wb, field, ev.quantity)
    if ev.kind == EventKind.ship:
        _draw_down(session, wb.purchase_permit_id, ev.quantity)
        _draw_down(session, wb.transport_permit_id, ev.quantity)
    check_agreement(session, wb, now)
    return wb


def check_agreement(session: Session, wb: Waybill, now: datetime) -> None:
    reported = {f: getattr(wb, f) for f in STEP_FIELD.values() if getattr(wb, f) is not None}
    if len(reported) < 2:
        return
    tol = Decimal(str(rules.RISK["waybill_mismatch"]["tolerance_pct"])) / 100
    base = wb.shipped if wb.shipped is not None else max(reported.values())
    if all(abs(q - base) <= base * tol for q in reported.values()):
        return
    wb.status = WaybillStatus.mismatch
    for ent_id in {wb.seller_id, wb.buyer_id}:
        signals.raise_signal(
            session,
            ent_id,
            "waybill_mismatch",
            f"waybill:{wb.id}",
            rule="同一运单的发货、起运、到达、收货数量应在容差内一致",
            inputs={"waybill": wb.number, **{k: qty(v) for k, v in reported.items()}},
            threshold={"tolerance_pct": rules.RISK["waybill_mismatch"]["tolerance_pct"]},
            now=now,
        )


def close(session: Session, actor: Actor, waybill_id: int, now: datetime | None = None) -> Waybill:
    """The buyer's manager closes a waybill whose three parties agree; only once."""
    now = now or utcnow()
    wb = session.get(Waybill, waybill_id, with_for_update=True)
    if wb is None:
        raise NotFound("运单不存在", code="waybill_not_found")
    if "manager" not in member_roles(session, actor, wb.buyer_id):
        raise Forbidden("只有收货企业专管员可以闭环运单", code="enterprise_role_required")
    if wb.status == WaybillStatus.closed:
        raise Conflict("运单已闭环，不能重复闭环", code="waybill_already_closed")
    if wb.status == WaybillStatus.mismatch:
        raise Conflict("运单数量不一致，须先处置预警", code="waybill_mismatch")
    missing = [STEP_NAMES[f] for f in STEP_FIELD.values() if getattr(wb, f) is None]
    if missing:
        raise Conflict(
            "运单尚缺：" + "、".join(missing), code="waybill_incomplete", details={"missing": missing}
        )
    wb.status, wb.closed_at = WaybillStatus.closed, now
    tp = session.get(Permit, wb.transport_permit_id)
    if tp.single_use:
        tp.status = PermitStatus.used
    session.flush()
    return wb


def flag_overdue(session: Session, now: datetime) -> int:
    """Open waybills past ETA + grace raise a mismatch signal (uses the status/eta index)."""
    grace = rules.RISK["waybill_mismatch"]["grace_hours"]
    rows = session.scalars(
        select(Waybill).where(
            Waybill.status == WaybillStatus.open, Waybill.eta < now - timedelta(hours=grace)
        )
    )
    n = 0
    for wb in rows:
        signals.raise_signal(
            session,
            wb.buyer_id,
            "waybill_mismatch",
            f"waybill:{wb.id}",
            rule="运单超过预计到达时间加宽限期仍未闭环",
            inputs={"waybill": wb.number, "eta": wb.eta.isoformat()},
            threshold={"grace_hours": grace},
            now=now,
        )
        n += 1
    return n
