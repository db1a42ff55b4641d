"""The flow ledger: immutable events, idempotency keys and mass balance on every event.

Each event updates the book stock of enterprise × site × chemical under a row lock
(``SELECT … FOR UPDATE``), so concurrent events on one stream serialise and the
balance equation opening + in − out − consumed − destroyed = closing always holds.
A stocktake outside tolerance raises a mass-balance signal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.auth import Actor
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.pagination import PageQuery, paginate
from models.permits.ledger import EventKind, EventStatus, LedgerEvent, StockBalance
from services.permits import catalogue, hotstate, hotsync, rules, signals, waybills
from services.permits.catalogue import qty as fmt
from services.permits.enterprises import get_enterprise, member_roles, require_reader, site_of

SIGN = {
    EventKind.produce: 1,
    EventKind.receive: 1,
    EventKind.ship: -1,
    EventKind.consume: -1,
    EventKind.destroy: -1,
}
ROLES = {
    EventKind.produce: {"manager", "warehouse"},
    EventKind.receive: {"manager", "warehouse"},
    EventKind.ship: {"manager", "warehouse", "sales"},
    EventKind.consume: {"manager", "warehouse"},
    EventKind.destroy: {"manager", "warehouse"},
    EventKind.stocktake: {"manager", "warehouse"},
    EventKind.depart: {"manager", "driver"},
    EventKind.arrive: {"manager", "driver"},
}
TRANSIT = (EventKind.depart, EventKind.arrive)


def _same(ev: LedgerEvent, kind: EventKind, chemical_id: int, quantity: Decimal, unit: str, **given) -> bool:
    """The filed event ``ev`` is the one described (site and time compared when given)."""
    return (
        ev.kind == kind
        and ev.chemical_id == chemical_id
        and ev.quantity == quantity
        and ev.unit == unit
        and ev.waybill_id == given["waybill_id"]
        and given["site_id"] in (None, ev.site_id)
        and given["occurred_at"] in (None, ev.occurred_at)
    )


def _existing(session: Session, enterprise_id: int, key: str) -> LedgerEvent | None:
    return session.scalar(
        select(LedgerEvent).where(
            LedgerEvent.enterprise_id == enterprise_id, LedgerEvent.idempotency_key == key
        )
    )


def lock_balance(session: Session, enterprise_id: int, site_id: int, chemical_id: int) -> StockBalance:
    """The stream's balance row, created if absent, locked for this transaction."""
    table = StockBalance.__table__
    ins = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(table)
    session.execute(
        ins.values(
            enterprise_id=enterprise_id,
            site_id=site_id,
            chemical_id=chemical_id,
            quantity=0,
            updated_at=utcnow(),
        ).on_conflict_do_nothing()
    )
    return session.scalar(
        select(StockBalance)
        .where(
            StockBalance.enterprise_id == enterprise_id,
            StockBalance.site_id == site_id,
            StockBalance.chemical_id == chemical_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _move_stock(session: Session, ev: LedgerEvent, delta: Decimal, now: datetime) -> Decimal:
    """Add ``delta`` to the stream's book stock in one statement; refuse to go below zero.

    In: an upsert. Out: an UPDATE guarded by ``quantity + delta >= 0``. Both lock the row
    until commit, so concurrent events on one stream serialise without a read first.
    """
    t = StockBalance.__table__
    key = (
        t.c.enterprise_id == ev.enterprise_id,
        t.c.site_id == ev.site_id,
        t.c.chemical_id == ev.chemical_id,
    )
    if delta >= 0:
        ins = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(t)
        stmt = ins.values(
            enterprise_id=ev.enterprise_id,
            site_id=ev.site_id,
            chemical_id=ev.chemical_id,
            quantity=delta,
            updated_at=now,
        ).on_conflict_do_update(
            index_elements=[t.c.enterprise_id, t.c.site_id, t.c.chemical_id],
            set_={"quantity": t.c.quantity + delta, "updated_at": now},
        )
        return Decimal(session.execute(stmt.returning(t.c.quantity)).scalar_one())
    stmt = (
        update(t).where(*key, t.c.quantity + delta >= 0).values(quantity=t.c.quantity + delta, updated_at=now)
    )
    after = session.execute(stmt.returning(t.c.quantity)).scalar()
    if after is None:
        book = session.execute(select(t.c.quantity).where(*key)).scalar() or 0
        msg = f"库存不足：账面 {fmt(book)}，本次 {fmt(-delta)}"
        raise ValidationFailed(msg, code="stock_insufficient", fields={"quantity": msg})
    return Decimal(after)


def _stocktake(session: Session, ev: LedgerEvent, now: datetime) -> Decimal | None:
    """Set the book to the counted quantity; returns the book before (for the variance)."""
    bal = lock_balance(session, ev.enterprise_id, ev.site_id, ev.chemical_id)
    book = Decimal(bal.quantity)
    bal.quantity, bal.updated_at = ev.quantity, now
    ev.variance, ev.balance_after = ev.quantity - book, ev.quantity
    return book


def check_stocktake(session: Session, ev: LedgerEvent, book: Decimal, now: datetime) -> None:
    """Raise (or resolve) the stream's mass-balance signal after a stocktake."""
    cfg = rules.RISK["mass_balance"]
    limit = abs(book) * Decimal(str(cfg["tolerance_pct"])) / 100
    subject = f"stream:{ev.site_id}:{ev.chemical_id}"
    if abs(ev.variance) <= limit:
        signals.resolve_signal(session, ev.enterprise_id, "mass_balance", subject, now)
        return
    signals.raise_signal(
        session,
        ev.enterprise_id,
        "mass_balance",
        subject,
        rule="盘点数与账面数差异超过容差（期初+入−出−用−销毁=期末）",
        inputs={
            "book": fmt(book),
            "counted": fmt(ev.quantity),
            "variance": fmt(ev.variance),
            "event_id": ev.id,
        },
        threshold={"tolerance_pct": cfg["tolerance_pct"]},
        now=now,
    )


def _authorise(session: Session, actor: Actor, enterprise_id: int, kind: EventKind) -> None:
    have = member_roles(session, actor, enterprise_id)
    if not have:
        if not actor.has_role("admin"):
            raise Forbidden("您不是该企业的成员", code="not_enterprise_member")
        get_enterprise(session, enterprise_id)
    elif not have & ROLES[kind]:
        raise Forbidden("您的企业角色不能报送此类事件", code="enterprise_role_required")


def file_event(
    session: Session,
    actor: Actor,
    enterprise_id: int,
    *,
    kind: str,
    chemical_id: int,
    quantity: Decimal,
    unit: str,
    idempotency_key: str,
    occurred_at: datetime | None = None,
    site_id: int | None = None,
    waybill_id: int | None = None,
    now: datetime | None = None,
) -> tuple[LedgerEvent, bool]:
    """File one event; returns (event, created). The same key again returns the first event.

    Side effects: stock balance, waybill quantities and permit drawdown (ship), risk
    signals. A different event under a used key is a conflict; nothing is written on error.
    """
    now = now or utcnow()
    if kind not in ROLES:
        raise ValidationFailed(code="invalid_event_kind", fields={"kind": "事件类型无效"})
    from services.permits import ledger_drain

    ledger_drain.settle_for(session)  # write-behind filings first: the book and the keys are exact
    ekind = EventKind(kind)
    _authorise(session, actor, enterprise_id, ekind)
    chem = catalogue.chemical(session, chemical_id)
    catalogue.check_quantity(chem, quantity, unit)
    qty = Decimal(str(quantity))
    prior = _existing(session, enterprise_id, idempotency_key)
    if prior is not None:
        given = {"waybill_id": waybill_id, "site_id": site_id, "occurred_at": occurred_at}
        if not _same(prior, ekind, chemical_id, qty, unit, **given):
            raise Conflict("该幂等键已用于另一条事件", code="idempotency_key_reused")
        return prior, False
    site = None if ekind in TRANSIT else site_of(session, enterprise_id, site_id)
    ev = LedgerEvent(
        enterprise_id=enterprise_id,
        site_id=site.id if site else None,
        chemical_id=chem.id,
        kind=ekind,
        quantity=qty,
        unit=unit,
        occurred_at=occurred_at or now,
        actor_id=actor.person_id,
        waybill_id=waybill_id,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    wb = None
    if waybill_id is not None or ekind in (*TRANSIT, EventKind.ship, EventKind.receive):
        wb = waybills.record_step(session, ev, now)
    book = None
    if ekind == EventKind.stocktake:
        book = _stocktake(session, ev, now)
    elif site is not None:
        ev.balance_after = _move_stock(session, ev, SIGN[ekind] * qty, now)
    session.add(ev)
    try:
        session.flush()
    except IntegrityError:
        # A concurrent request with the same key committed first: the client retries.
        raise Conflict(
            "同一幂等键的请求正在处理，请稍后重试", code="idempotency_key_in_flight", status=409
        ) from None
    if book is not None:
        check_stocktake(session, ev, book, now)
    _tell_hot_path(session, ev, book is not None, given_occurred=occurred_at, wb=wb)
    return ev, True


def _tell_hot_path(session: Session, ev: LedgerEvent, stocktake: bool, *, given_occurred, wb) -> None:
    """Filed on the database path: the hot path's counters for this stream, waybill and
    permits are stale now, and a retry of the key on the hot path must replay this event."""
    fields = {"b" + hotstate.bal_field(ev.enterprise_id, ev.site_id, ev.chemical_id)} if ev.site_id else set()
    if wb is not None:
        fields |= {f"w{wb.id}", f"p{wb.purchase_permit_id}", f"p{wb.transport_permit_id}"}
    given = given_occurred.astimezone(UTC).isoformat() if given_occurred else ""
    fp = hotstate.fingerprint(
        ev.kind.value, ev.chemical_id, hotstate.milli(ev.quantity), ev.unit, ev.site_id, ev.waybill_id, given
    )
    bal = None if ev.balance_after is None else hotstate.milli(ev.balance_after)
    var = hotstate.milli(ev.variance) if stocktake else None
    rec = hotstate.record(fp, ev.id, ev.site_id, bal, var, ev.occurred_at.astimezone(UTC).isoformat())
    hotsync.touch(session, fields, dedup=(ev.enterprise_id, ev.idempotency_key, rec))


def request_correction(
    session: Session,
    actor: Actor,
    event_id: int,
    *,
    quantity: Decimal,
    reason: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> LedgerEvent:
    """A correction is a new event pointing at the original; it waits for a second person."""
    now = now or utcnow()
    orig = session.get(LedgerEvent, event_id)
    if orig is None or orig.kind == EventKind.correction:
        raise NotFound("待更正的事件不存在", code="event_not_found")
    have = member_roles(session, actor, orig.enterprise_id)
    if not have & ROLES[orig.kind]:
        raise Forbidden("您不能更正该事件", code="enterprise_role_required")
    chem = catalogue.chemical(session, orig.chemical_id)
    catalogue.check_quantity(chem, quantity, orig.unit)
    if not reason.strip():
        raise ValidationFailed(code="reason_required", fields={"reason": "必须说明更正原因"})
    prior = _existing(session, orig.enterprise_id, idempotency_key)
    if prior is not None:
        return prior
    ev = LedgerEvent(
        enterprise_id=orig.enterprise_id,
        site_id=orig.site_id,
        chemical_id=orig.chemical_id,
        kind=EventKind.correction,
        corrected_kind=orig.kind.value,
        quantity=Decimal(str(quantity)),
        unit=orig.unit,
        occurred_at=now,
        actor_id=actor.person_id,
        waybill_id=orig.waybill_id,
        idempotency_key=idempotency_key,
        corrects_id=orig.id,
        reason=reason,
        status=EventStatus.pending_approval,
        created_at=now,
    )
    session.add(ev)
    session.flush()
    return ev


def approve_correction(
    session: Session, actor: Actor, event_id: int, now: datetime | None = None
) -> LedgerEvent:
    """A second person (manager, not the requester) approves; the difference hits the balance."""
    now = now or utcnow()
    ev = session.get(LedgerEvent, event_id, with_for_update=True)
    if ev is None or ev.kind != EventKind.correction:
        raise NotFound("更正事件不存在", code="event_not_found")
    if "manager" not in member_roles(session, actor, ev.enterprise_id):
        raise Forbidden("需要专管员审批更正", code="enterprise_role_required")
    if ev.actor_id == actor.person_id:
        raise Forbidden("更正须由另一人审批", code="second_person_required")
    if ev.status != EventStatus.pending_approval:
        raise Conflict("该更正已处理", code="correction_already_decided")
    orig = session.get(LedgerEvent, ev.corrects_id)
    ev.status, ev.approved_by_id, ev.approved_at = EventStatus.filed, actor.person_id, now
    kind = EventKind(ev.corrected_kind)
    if ev.site_id is not None and kind in SIGN:
        delta = Decimal(ev.quantity) - Decimal(orig.quantity)
        bal = lock_balance(session, ev.enterprise_id, ev.site_id, ev.chemical_id)
        bal.quantity = Decimal(bal.quantity) + SIGN[kind] * delta
        ev.balance_after = bal.quantity
    session.flush()
    return ev


def events_page(
    session: Session, actor: Actor, enterprise_id: int, query: PageQuery, convert: Callable[[Any], Any]
) -> dict[str, Any]:
    """The enterprise's ledger, newest first (members and covering regulators only)."""
    require_reader(session, actor, enterprise_id)
    stmt = select(LedgerEvent).where(LedgerEvent.enterprise_id == enterprise_id)
    return paginate(session, stmt, LedgerEvent.id, query, convert)


def list_events(session: Session, actor: Actor, enterprise_id: int, limit: int = 50) -> list[LedgerEvent]:
    """The newest ``limit`` events (same access rule as ``events_page``)."""
    require_reader(session, actor, enterprise_id)
    stmt = select(LedgerEvent).where(LedgerEvent.enterprise_id == enterprise_id)
    return list(session.scalars(stmt.order_by(LedgerEvent.id.desc()).limit(limit)))
