"""The flow ledger (一单贯通): immutable events, stock balances, waybills, trip segments."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from models.identity import str_enum

Qty = Numeric(14, 3)


class EventKind(enum.StrEnum):
    produce = "produce"
    receive = "receive"
    ship = "ship"
    depart = "depart"
    arrive = "arrive"
    consume = "consume"
    destroy = "destroy"
    stocktake = "stocktake"
    correction = "correction"


class EventStatus(enum.StrEnum):
    filed = "filed"
    pending_approval = "pending_approval"  # corrections wait for a second person
    rejected = "rejected"


class WaybillStatus(enum.StrEnum):
    open = "open"
    closed = "closed"
    mismatch = "mismatch"


class LedgerEvent(Base):
    """Never updated except a correction's approval fields; corrections are new rows."""

    __tablename__ = "permit_ledger_events"
    __table_args__ = (
        UniqueConstraint("enterprise_id", "idempotency_key"),
        Index("ix_permit_ledger_stream", "enterprise_id", "site_id", "chemical_id", "occurred_at"),
        Index("ix_permit_ledger_kind_time", "enterprise_id", "kind", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("permit_sites.id"))
    chemical_id: Mapped[int] = mapped_column(ForeignKey("permit_chemicals.id"))
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind, "ledger_event_kind"))
    quantity: Mapped[Decimal] = mapped_column(Qty)
    unit: Mapped[str] = mapped_column(String(8))
    occurred_at: Mapped[datetime] = mapped_column()
    actor_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    waybill_id: Mapped[int | None] = mapped_column(ForeignKey("permit_waybills.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    balance_after: Mapped[Decimal | None] = mapped_column(Qty)
    variance: Mapped[Decimal | None] = mapped_column(Qty)  # stocktake: counted - book
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("permit_ledger_events.id"))
    corrected_kind: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[EventStatus] = mapped_column(
        str_enum(EventStatus, "ledger_event_status"), default=EventStatus.filed
    )
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    approved_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StockBalance(Base):
    """Book stock per enterprise × site × chemical; updated under a row lock per event."""

    __tablename__ = "permit_stock_balances"

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("permit_sites.id"), primary_key=True)
    chemical_id: Mapped[int] = mapped_column(ForeignKey("permit_chemicals.id"), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(Qty, default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Waybill(Base):
    """One waybill ties the seller's ship, the driver's trip and the buyer's receive."""

    __tablename__ = "permit_waybills"
    __table_args__ = (Index("ix_permit_waybills_status_eta", "status", "eta"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    transport_permit_id: Mapped[int] = mapped_column(ForeignKey("permit_permits.id"), index=True)
    purchase_permit_id: Mapped[int] = mapped_column(ForeignKey("permit_permits.id"))
    seller_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"))
    carrier_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"))
    chemical_id: Mapped[int] = mapped_column(ForeignKey("permit_chemicals.id"))
    planned: Mapped[Decimal] = mapped_column(Qty)
    shipped: Mapped[Decimal | None] = mapped_column(Qty)
    departed: Mapped[Decimal | None] = mapped_column(Qty)
    arrived: Mapped[Decimal | None] = mapped_column(Qty)
    received: Mapped[Decimal | None] = mapped_column(Qty)
    eta: Mapped[datetime] = mapped_column()
    status: Mapped[WaybillStatus] = mapped_column(
        str_enum(WaybillStatus, "waybill_status"), default=WaybillStatus.open
    )
    closed_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TripSegment(Base):
    """A continuous stretch of driving reported by the vehicle terminal or the driver."""

    __tablename__ = "permit_trip_segments"
    __table_args__ = (Index("ix_permit_trip_driver_time", "driver_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"), index=True)
    waybill_id: Mapped[int | None] = mapped_column(ForeignKey("permit_waybills.id"))
    driver_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("permit_vehicles.id"))
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime] = mapped_column()
