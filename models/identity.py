"""People, their channel identities, roles, jurisdiction (org tree) and login state."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utcnow
from core.pii import EncryptedString


def str_enum(cls: type[enum.Enum], name: str) -> Enum:
    """Enum stored as its value (portable VARCHAR + CHECK), stable across renames."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class OrgLevel(enum.StrEnum):
    district = "district"  # 区
    street = "street"  # 街道/乡镇
    community = "community"  # 社区/村
    grid = "grid"  # 网格


class Role(enum.StrEnum):
    citizen = "citizen"
    grid_worker = "grid_worker"
    trainer = "trainer"
    officer = "officer"
    regulator = "regulator"
    enterprise = "enterprise"  # membership details live in the permits domain
    gate = "gate"  # a gate device account
    admin = "admin"


class Department(enum.StrEnum):
    police = "police"  # 公安
    emergency = "emergency"  # 应急管理
    transport = "transport"  # 交通运输
    market = "market"  # 市场监管


class IdentityKind(enum.StrEnum):
    wechat_oa = "wechat_oa"  # official-account openid
    wechat_mp = "wechat_mp"  # mini-program openid
    wechat_unionid = "wechat_unionid"
    dingtalk = "dingtalk"  # DingTalk userid


class OrgUnit(Base):
    __tablename__ = "org_units"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[OrgLevel] = mapped_column(str_enum(OrgLevel, "org_level"))
    # Materialised path "/1/4/9/": subtree checks and roll-ups are prefix matches.
    path: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id])


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    id_number: Mapped[str | None] = mapped_column(EncryptedString())
    id_number_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    mobile: Mapped[str | None] = mapped_column(EncryptedString())
    mobile_index: Mapped[str | None] = mapped_column(String(64), index=True)
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    org_unit: Mapped[OrgUnit | None] = relationship()
    identities: Mapped[list[Identity]] = relationship(back_populates="person")
    roles: Mapped[list[RoleGrant]] = relationship(back_populates="person")


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "app_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    kind: Mapped[IdentityKind] = mapped_column(str_enum(IdentityKind, "identity_kind"))
    app_id: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    last_seen_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship(back_populates="identities")


class RoleGrant(Base):
    __tablename__ = "role_grants"
    __table_args__ = (
        UniqueConstraint("person_id", "role", "org_unit_id", "department"),
        # "every grid worker" (reminders, levels, notices) in time proportional to them
        Index("ix_role_grants_role_person", "role", "person_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    department: Mapped[Department | None] = mapped_column(str_enum(Department, "department"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship(back_populates="roles")
    org_unit: Mapped[OrgUnit | None] = relationship()


class StaffLogin(Base):
    """Username/password for staff accounts; lockout state lives on the row."""

    __tablename__ = "staff_logins"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    last_login_at: Mapped[datetime | None] = mapped_column()


class AuthToken(Base):
    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class BindingCode(Base):
    """One-time code that links a chat identity to an existing account."""

    __tablename__ = "binding_codes"
    __table_args__ = (Index("ix_binding_codes_person_open", "person_id", "used_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    used_identity_id: Mapped[int | None] = mapped_column(ForeignKey("identities.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
