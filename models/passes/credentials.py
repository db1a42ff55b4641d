"""Issued passes, the revocation list, and gate passages (accepted and refused)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from models.identity import str_enum


class PassStatus(enum.StrEnum):
    active = "active"
    revoked = "revoked"


class PassCredential(Base):
    """A signed pass token; re-issue creates a new row and revokes the old one."""

    __tablename__ = "pass_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pass_events.id"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("pass_applications.id"), index=True)
    ring: Mapped[int] = mapped_column()
    kid: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column()
    valid_to: Mapped[datetime] = mapped_column()
    status: Mapped[PassStatus] = mapped_column(str_enum(PassStatus, "pass_status"), default=PassStatus.active)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("pass_credentials.id"))
    card_png_key: Mapped[str | None] = mapped_column(String(200))
    card_pdf_key: Mapped[str | None] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class Revocation(Base):
    """Revocation list entry; ``version`` is the event's counter after this entry."""

    __tablename__ = "pass_revocations"
    __table_args__ = (UniqueConstraint("event_id", "version"), UniqueConstraint("pass_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pass_events.id"))
    pass_id: Mapped[int] = mapped_column(ForeignKey("pass_credentials.id"))
    version: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Passage(Base):
    """An accepted scan (entry or exit). ``nonce`` is unique: flushing is idempotent."""

    __tablename__ = "pass_passages"
    __table_args__ = (Index("ix_pass_passages_gate_time", "gate_id", "scanned_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pass_events.id"), index=True)
    pass_id: Mapped[int] = mapped_column(ForeignKey("pass_credentials.id"), index=True)
    gate_id: Mapped[int] = mapped_column(ForeignKey("pass_gates.id"))
    ring: Mapped[int] = mapped_column()
    direction: Mapped[str] = mapped_column(String(3))
    offline: Mapped[bool] = mapped_column(default=False)
    scanned_at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScanRefusal(Base):
    """The refused-scan log: what was refused and why (no passage is written)."""

    __tablename__ = "pass_scan_refusals"

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pass_events.id"), index=True)
    gate_id: Mapped[int] = mapped_column(ForeignKey("pass_gates.id"))
    pass_id: Mapped[int | None] = mapped_column()  # unverified claims are not trusted as an FK
    reason: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(3))
    offline: Mapped[bool] = mapped_column(default=False)
    scanned_at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
