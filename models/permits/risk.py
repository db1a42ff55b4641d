"""Risk signals (explainable) and the warnings regulators work through to closure."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from models.identity import str_enum


class Severity(enum.StrEnum):
    red = "red"  # hard violation
    yellow = "yellow"  # statistical warning


class SignalStatus(enum.StrEnum):
    open = "open"
    resolved = "resolved"


class WarningStatus(enum.StrEnum):
    assigned = "assigned"
    acknowledged = "acknowledged"
    handled = "handled"
    closed = "closed"


class RiskSignal(Base):
    __tablename__ = "permit_risk_signals"
    __table_args__ = (Index("ix_permit_risk_open", "enterprise_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"))
    model: Mapped[str] = mapped_column(String(32))
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, "risk_severity"))
    status: Mapped[SignalStatus] = mapped_column(
        str_enum(SignalStatus, "risk_signal_status"), default=SignalStatus.open
    )
    # One signal per model and subject (e.g. "waybill:12"): re-evaluation updates it.
    subject: Mapped[str] = mapped_column(String(100))
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    rule: Mapped[str] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    threshold: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rules_version: Mapped[str] = mapped_column(String(32))
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)
    reevaluate_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Warning(Base):
    __tablename__ = "permit_warnings"
    __table_args__ = (Index("ix_permit_warnings_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("permit_risk_signals.id"), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"), index=True)
    risk_type: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(32))
    status: Mapped[WarningStatus] = mapped_column(
        str_enum(WarningStatus, "warning_status"), default=WarningStatus.assigned
    )
    due_at: Mapped[datetime] = mapped_column()
    escalation_level: Mapped[int] = mapped_column(default=0)
    escalated_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    feedback: Mapped[str | None] = mapped_column(Text)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    handled_at: Mapped[datetime | None] = mapped_column()
    evaluation: Mapped[str | None] = mapped_column(Text)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    closed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
