"""The precursor-chemical catalogue: data imported with a date, never code."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class Chemical(Base):
    __tablename__ = "permit_chemicals"

    id: Mapped[int] = mapped_column(primary_key=True)
    cas: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[int] = mapped_column()
    unit: Mapped[str] = mapped_column(String(8), default="kg")
    note: Mapped[str] = mapped_column(String(200), default="")
    catalogue_date: Mapped[date] = mapped_column()
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
