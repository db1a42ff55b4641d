"""Purchase/transport applications and the permits or filings issued from them."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from models.identity import str_enum

Qty = Numeric(14, 3)


class Purpose(enum.StrEnum):
    purchase = "purchase"
    transport = "transport"


class ApplicationStatus(enum.StrEnum):
    issued = "issued"  # passed the instant check
    refused = "refused"  # failed the instant check (reasons listed)
    pending_review = "pending_review"  # regulator queue
    approved = "approved"
    rejected = "rejected"


class PermitForm(enum.StrEnum):
    permit = "permit"  # 许可证
    filing = "filing"  # 备案证明


class PermitStatus(enum.StrEnum):
    valid = "valid"
    flagged = "flagged"  # a credential it relies on expired
    revoked = "revoked"
    used = "used"  # single-use transport permit after its trip


class Application(Base):
    __tablename__ = "permit_applications"
    __table_args__ = (Index("ix_permit_applications_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[Purpose] = mapped_column(str_enum(Purpose, "permit_purpose"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"), index=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    chemical_id: Mapped[int] = mapped_column(ForeignKey("permit_chemicals.id"))
    quantity: Mapped[Decimal] = mapped_column(Qty)
    unit: Mapped[str] = mapped_column(String(8))
    seller_enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("permit_enterprises.id"))
    carrier_enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("permit_enterprises.id"))
    # use_alter: applications and permits reference each other.
    purchase_permit_id: Mapped[int | None] = mapped_column(ForeignKey("permit_permits.id", use_alter=True))
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("permit_vehicles.id"))
    driver_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    escort_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    plate: Mapped[str | None] = mapped_column(String(16))
    window_start: Mapped[date] = mapped_column()
    window_end: Mapped[date] = mapped_column()
    status: Mapped[ApplicationStatus] = mapped_column(str_enum(ApplicationStatus, "application_status"))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    rules_version: Mapped[str] = mapped_column(String(32))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Permit(Base):
    __tablename__ = "permit_permits"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    purpose: Mapped[Purpose] = mapped_column(str_enum(Purpose, "permit_purpose"))
    form: Mapped[PermitForm] = mapped_column(str_enum(PermitForm, "permit_form"))
    application_id: Mapped[int] = mapped_column(ForeignKey("permit_applications.id"), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"), index=True)
    seller_enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("permit_enterprises.id"))
    carrier_enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("permit_enterprises.id"))
    purchase_permit_id: Mapped[int | None] = mapped_column(ForeignKey("permit_permits.id"))
    chemical_id: Mapped[int] = mapped_column(ForeignKey("permit_chemicals.id"))
    quantity: Mapped[Decimal] = mapped_column(Qty)
    remaining: Mapped[Decimal] = mapped_column(Qty)
    unit: Mapped[str] = mapped_column(String(8))
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("permit_vehicles.id"))
    driver_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    valid_from: Mapped[date] = mapped_column()
    valid_until: Mapped[date] = mapped_column()
    single_use: Mapped[bool] = mapped_column(default=False)
    status: Mapped[PermitStatus] = mapped_column(
        str_enum(PermitStatus, "permit_status"), default=PermitStatus.valid
    )
    flag_reason: Mapped[str | None] = mapped_column(String(200))
    issuing_authority: Mapped[str] = mapped_column(String(100))
    token: Mapped[str] = mapped_column(Text)
    cert_path: Mapped[str | None] = mapped_column(String(300))
    cert_sha256: Mapped[str | None] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class PermitCredential(Base):
    """Credentials a permit relies on: their expiry flags the permit."""

    __tablename__ = "permit_permit_credentials"

    permit_id: Mapped[int] = mapped_column(ForeignKey("permit_permits.id"), primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("permit_credentials.id"), primary_key=True, index=True
    )
