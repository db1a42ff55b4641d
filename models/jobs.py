"""Tables of the jobs layer: push notifications, subscribe-message credits, stored documents."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from models.identity import str_enum


class Channel(enum.StrEnum):
    wechat_template = "wechat_template"  # official-account template message
    wechat_subscribe = "wechat_subscribe"  # mini-program one-time subscribe message
    wechat_custom = "wechat_custom"  # customer-service message (48 h window)
    dingtalk_work = "dingtalk_work"  # DingTalk 工作通知
    console = "console"  # embedded default: recorded, never sent


class NotificationStatus(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class Notification(Base):
    """One message to one person. ``dedup_key`` is unique: a reminder asked for twice
    (retry, second scheduler) is one row and at most one send."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_person_created", "person_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "push_channel"))
    kind: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str | None] = mapped_column(String(128))
    recipient: Mapped[str | None] = mapped_column(String(128))  # openid / DingTalk userid
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[NotificationStatus] = mapped_column(
        str_enum(NotificationStatus, "notification_status"), default=NotificationStatus.pending
    )
    platform_msg_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class SubscriptionCredit(Base):
    """Remaining one-time subscribe-message consents of a person for a template."""

    __tablename__ = "push_subscription_credits"
    __table_args__ = (UniqueConstraint("person_id", "template_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    template_id: Mapped[str] = mapped_column(String(128))
    credits: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredDocument(Base):
    """A rendered document of a domain object (pass card PNG, permit PDF ...).

    One row per (subject, document kind): re-running a render job updates nothing
    when the bytes are equal, and the content-addressed store keeps one file.
    """

    __tablename__ = "stored_documents"
    __table_args__ = (UniqueConstraint("subject_type", "subject_id", "doc_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(32))  # "pass", "permit"
    subject_id: Mapped[int] = mapped_column()
    doc_kind: Mapped[str] = mapped_column(String(32))  # "card_png", "card_pdf", "certificate_pdf"
    owner_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    file_key: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column()
    content_type: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
