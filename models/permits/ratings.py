"""Quarterly star ratings of enterprises (one row per enterprise and quarter)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class StarRating(Base):
    __tablename__ = "permit_star_ratings"
    __table_args__ = (UniqueConstraint("enterprise_id", "quarter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("permit_enterprises.id"))
    quarter: Mapped[str] = mapped_column(String(8))  # "2026Q3"
    score: Mapped[float] = mapped_column(Numeric(5, 1))
    stars: Mapped[int] = mapped_column()
    indicators: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    weights_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
