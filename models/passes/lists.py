"""Watch list, trust list and the alerts officers work through."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from models.identity import str_enum


class WatchSeverity(enum.StrEnum):
    reject = "reject"  # exact hit refuses the application / scan
    alert = "alert"  # exact hit lets it through but alerts officers


class WatchEntry(Base):
    """Exact (``subject_index``: ID or plate blind index) or partial (name + birth date)."""

    __tablename__ = "pass_watch_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("pass_events.id"), index=True)
    subject_index: Mapped[str | None] = mapped_column(String(64), index=True)
    subject_hint: Mapped[str | None] = mapped_column(String(32))  # masked, for officers
    name: Mapped[str | None] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column()
    reason: Mapped[str] = mapped_column(String(200))
    severity: Mapped[WatchSeverity] = mapped_column(str_enum(WatchSeverity, "pass_watch_severity"))
    valid_until: Mapped[datetime | None] = mapped_column()
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Last time an officer made the entry stricter (severity raised to reject, validity
    # extended): trust granted before it is re-screened as if the entry were new.
    revised_at: Mapped[datetime | None] = mapped_column()


class TrustEntry(Base):
    """A cleared subject for an event and ring until a date; repeat alerts are counted."""

    __tablename__ = "pass_trust_entries"
    __table_args__ = (Index("ix_pass_trust_subject", "event_id", "subject_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pass_events.id"))
    subject_index: Mapped[str] = mapped_column(String(64))
    ring: Mapped[int] = mapped_column()
    valid_until: Mapped[datetime] = mapped_column()
    source: Mapped[str] = mapped_column(String(32))  # officer_cleared / clean_passages
    active: Mapped[bool] = mapped_column(default=True)
    ended_reason: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column()
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    suppressed_count: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertStatus(enum.StrEnum):
    open = "open"
    cleared = "cleared"
    confirmed = "confirmed"


class Alert(Base):
    __tablename__ = "pass_alerts"
    __table_args__ = (Index("ix_pass_alerts_event_status", "event_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pass_events.id"))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(300))
    subject_index: Mapped[str | None] = mapped_column(String(64))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("pass_applications.id"))
    pass_id: Mapped[int | None] = mapped_column(ForeignKey("pass_credentials.id"))
    gate_id: Mapped[int | None] = mapped_column(ForeignKey("pass_gates.id"))
    watch_entry_id: Mapped[int | None] = mapped_column(ForeignKey("pass_watch_entries.id"))
    details: Mapped[str | None] = mapped_column(Text)
    status: Mapped[AlertStatus] = mapped_column(
        str_enum(AlertStatus, "pass_alert_status"), default=AlertStatus.open
    )
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    resolved_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
