"""Applications for a pass (visitor or vehicle), groups, and stored rule results."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utcnow
from core.pii import EncryptedString
from models.identity import str_enum


class ApplicationKind(enum.StrEnum):
    visitor = "visitor"
    vehicle = "vehicle"


class ApplicationStatus(enum.StrEnum):
    approved = "approved"
    rejected = "rejected"
    manual_review = "manual_review"
    cancelled = "cancelled"


class PassGroup(Base):
    """A group application: the leader applied for every member (each has own pass)."""

    __tablename__ = "pass_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pass_events.id"), index=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Application(Base):
    """One person (visitor) or one vehicle with its driver (vehicle).

    ``subject_index`` is what duplicates, watch and trust lists match on: the blind
    index of the ID number (visitor) or of the plate (vehicle).
    """

    __tablename__ = "pass_applications"
    __table_args__ = (
        Index("ix_pass_applications_subject", "event_id", "subject_index"),
        # The day-before-visit reminder reads one visit day (services.passes.reminders).
        Index("ix_pass_applications_visit_from", "visit_from", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pass_events.id"), index=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("pass_groups.id"), index=True)
    kind: Mapped[ApplicationKind] = mapped_column(str_enum(ApplicationKind, "pass_application_kind"))
    status: Mapped[ApplicationStatus] = mapped_column(str_enum(ApplicationStatus, "pass_application_status"))
    ring: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))
    id_number: Mapped[str] = mapped_column(EncryptedString())
    id_index: Mapped[str] = mapped_column(String(64), index=True)
    birth_date: Mapped[date] = mapped_column()
    mobile: Mapped[str] = mapped_column(EncryptedString())
    mobile_index: Mapped[str] = mapped_column(String(64))
    plate: Mapped[str | None] = mapped_column(String(16))
    plate_colour: Mapped[str | None] = mapped_column(String(8))
    vehicle_type: Mapped[str | None] = mapped_column(String(32))
    driving_licence: Mapped[str | None] = mapped_column(EncryptedString())
    subject_index: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(200))
    host_unit: Mapped[str] = mapped_column(String(100))
    visit_from: Mapped[date] = mapped_column()
    visit_to: Mapped[date] = mapped_column()
    time_from: Mapped[str] = mapped_column(String(5), default="00:00")
    time_to: Mapped[str] = mapped_column(String(5), default="24:00")
    rule_set_version: Mapped[str] = mapped_column(String(32))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    rule_results: Mapped[list[RuleResult]] = relationship(
        back_populates="application", order_by="RuleResult.seq"
    )


class RuleResult(Base):
    """One rule's verdict on one application (all are stored, in rule order)."""

    __tablename__ = "pass_rule_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("pass_applications.id"), index=True)
    seq: Mapped[int] = mapped_column()
    rule: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))  # pass / reject / review / alert / skip
    reason_code: Mapped[str] = mapped_column(String(48))
    message: Mapped[str] = mapped_column(String(300))

    # Module-qualified: the permits domain has an Application model too.
    application: Mapped[Application] = relationship(
        "models.passes.applications.Application", back_populates="rule_results"
    )
