"""Credentials (证照) of enterprises, vehicles and people, each with an expiry."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from models.identity import str_enum


class CredentialKind(enum.StrEnum):
    vehicle_registration = "vehicle_registration"  # 行驶证 (valid_until = inspection due)
    road_transport = "road_transport"  # 道路运输证
    driving_licence = "driving_licence"  # 驾驶证
    driver_qualification = "driver_qualification"  # 从业资格证（危险货物）
    escort_qualification = "escort_qualification"  # 押运员资格
    enterprise_licence = "enterprise_licence"  # 企业许可/备案（按类别）


class CredentialStatus(enum.StrEnum):
    active = "active"
    expired = "expired"
    revoked = "revoked"


class Credential(Base):
    __tablename__ = "permit_credentials"
    # The daily reminder/expiry queries select by date: cost follows what is due.
    __table_args__ = (Index("ix_permit_credentials_status_valid_until", "status", "valid_until"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"), index=True)
    kind: Mapped[CredentialKind] = mapped_column(str_enum(CredentialKind, "credential_kind"))
    number: Mapped[str] = mapped_column(String(64))
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("permit_vehicles.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    plate: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[int | None] = mapped_column()  # enterprise licence: the category covered
    scope: Mapped[str] = mapped_column(String(200), default="")
    valid_from: Mapped[date | None] = mapped_column()
    valid_until: Mapped[date] = mapped_column()
    status: Mapped[CredentialStatus] = mapped_column(
        str_enum(CredentialStatus, "credential_status"), default=CredentialStatus.active
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
