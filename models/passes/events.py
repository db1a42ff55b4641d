"""An event, its nested zone rings and the gates on each ring boundary."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utcnow
from models.identity import str_enum


class GateDirection(enum.StrEnum):
    entry = "in"
    exit = "out"
    both = "both"


class Event(Base):
    """A secured event. ``revocation_version`` only grows (one step per revoked pass)."""

    __tablename__ = "pass_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # Per-event HMAC key for holder tags, encrypted with SIGNING_KEK (aad: event id).
    gate_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    revocation_version: Mapped[int] = mapped_column(default=0)
    # Overrides of services.passes.rules.RULE_SET for this event (e.g. on-site desks
    # that issue same-day passes set min_lead_hours to 0).
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    zones: Mapped[list[Zone]] = relationship(back_populates="event", order_by="Zone.ring")


class Zone(Base):
    """Ring ``n`` lies inside ring ``n-1`` (1 = outermost); a ring-n pass opens rings 1..n."""

    __tablename__ = "pass_zones"
    __table_args__ = (UniqueConstraint("event_id", "ring"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pass_events.id"), index=True)
    ring: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))
    daily_capacity_visitor: Mapped[int | None] = mapped_column()
    daily_capacity_vehicle: Mapped[int | None] = mapped_column()
    # Occupancy limit checked at the gates (reason ``capacity``); None = unlimited.
    max_inside: Mapped[int | None] = mapped_column()

    event: Mapped[Event] = relationship(back_populates="zones")


class Gate(Base):
    """A gate on the outer boundary of ring ``ring``; a device account scans for it."""

    __tablename__ = "pass_gates"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pass_events.id"), index=True)
    ring: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))
    direction: Mapped[GateDirection] = mapped_column(str_enum(GateDirection, "gate_direction"))
    vehicle: Mapped[bool] = mapped_column(default=False)
    offline_capable: Mapped[bool] = mapped_column(default=True)
    fail_closed: Mapped[bool] = mapped_column(default=False)
    device_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
