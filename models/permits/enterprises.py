"""Enterprises, their sites, vehicles and members (with enterprise roles)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from models.identity import str_enum


class EnterpriseKind(enum.StrEnum):
    producer = "producer"  # 生产
    trader = "trader"  # 经营
    user = "user"  # 使用
    carrier = "carrier"  # 运输


class EnterpriseStatus(enum.StrEnum):
    active = "active"
    suspended = "suspended"


class MemberRole(enum.StrEnum):
    manager = "manager"  # 专管员
    warehouse = "warehouse"  # 仓库管理员
    sales = "sales"  # 销售业务员
    driver = "driver"  # 驾驶员


class MemberStatus(enum.StrEnum):
    invited = "invited"
    active = "active"
    removed = "removed"


class Enterprise(Base):
    __tablename__ = "permit_enterprises"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    kind: Mapped[EnterpriseKind] = mapped_column(str_enum(EnterpriseKind, "enterprise_kind"))
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    status: Mapped[EnterpriseStatus] = mapped_column(
        str_enum(EnterpriseStatus, "enterprise_status"), default=EnterpriseStatus.active
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Site(Base):
    __tablename__ = "permit_sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")


class Vehicle(Base):
    __tablename__ = "permit_vehicles"
    __table_args__ = (UniqueConstraint("plate", "plate_colour"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"), index=True)
    plate: Mapped[str] = mapped_column(String(16))
    plate_colour: Mapped[str] = mapped_column(String(8))
    vehicle_type: Mapped[str] = mapped_column(String(64), default="危险货物运输车")


class Member(Base):
    """A person's role in an enterprise; services check it on every call."""

    __tablename__ = "permit_members"
    __table_args__ = (UniqueConstraint("enterprise_id", "person_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    role: Mapped[MemberRole] = mapped_column(str_enum(MemberRole, "member_role"))
    status: Mapped[MemberStatus] = mapped_column(
        str_enum(MemberStatus, "member_status"), default=MemberStatus.active
    )
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
