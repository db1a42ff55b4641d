"""Quarterly star rating with published indicator weights (``rules.RATING_WEIGHTS``).

Each indicator scores 0-100; the weighted sum maps to stars by ``STAR_THRESHOLDS``.
The enterprise sees its score, the change since last quarter and what the next star needs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth import Actor
from models.permits.catalogue import Chemical
from models.permits.credentials import Credential
from models.permits.ledger import LedgerEvent, Waybill, WaybillStatus
from models.permits.ratings import StarRating
from models.permits.risk import RiskSignal, Warning, WarningStatus
from services.permits import rules
from services.permits.enterprises import require_reader

INDICATOR_NAMES = {
    "filing_timeliness": "报送及时率",
    "ledger_completeness": "运单闭环率",
    "mass_balance_accuracy": "账实相符",
    "credential_currency": "证照有效",
    "warnings": "预警数量与处置速度",
    "training": "培训",
}


def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    year, q = int(quarter[:4]), int(quarter[-1])
    start = date(year, 3 * (q - 1) + 1, 1)
    end = date(year + (q == 4), (3 * q) % 12 + 1, 1)
    return datetime.combine(start, datetime.min.time(), UTC), datetime.combine(end, datetime.min.time(), UTC)


def previous_quarter(quarter: str) -> str:
    year, q = int(quarter[:4]), int(quarter[-1])
    return f"{year - 1}Q4" if q == 1 else f"{year}Q{q - 1}"


def _ratio(good: int, total: int) -> float:
    return 100.0 if total == 0 else round(100.0 * good / total, 1)


def indicators(
    session: Session, enterprise_id: int, quarter: str, training: float | None = None
) -> dict[str, float]:
    start, end = quarter_bounds(quarter)
    events = session.execute(
        select(LedgerEvent.occurred_at, LedgerEvent.created_at, Chemical.category)
        .join(Chemical, Chemical.id == LedgerEvent.chemical_id)
        .where(
            LedgerEvent.enterprise_id == enterprise_id,
            LedgerEvent.occurred_at >= start,
            LedgerEvent.occurred_at < end,
        )
    ).all()
    timely = sum(
        1 for occ, created, cat in events if created - occ <= timedelta(days=rules.SALES_REPORT_DAYS[cat])
    )
    wb_filter = (
        (Waybill.seller_id == enterprise_id) | (Waybill.buyer_id == enterprise_id),
        Waybill.created_at >= start,
        Waybill.created_at < end,
    )
    wb_total = session.scalar(select(func.count(Waybill.id)).where(*wb_filter))
    wb_closed = session.scalar(
        select(func.count(Waybill.id)).where(*wb_filter, Waybill.status == WaybillStatus.closed)
    )
    mb = session.scalar(
        select(func.count(RiskSignal.id)).where(
            RiskSignal.enterprise_id == enterprise_id,
            RiskSignal.model.in_(("mass_balance", "waybill_mismatch")),
            RiskSignal.created_at >= start,
            RiskSignal.created_at < end,
        )
    )
    creds = list(session.scalars(select(Credential).where(Credential.enterprise_id == enterprise_id)))
    current = sum(1 for c in creds if c.valid_until >= (end - timedelta(days=1)).date())
    warns = list(
        session.scalars(
            select(Warning).where(
                Warning.enterprise_id == enterprise_id, Warning.created_at >= start, Warning.created_at < end
            )
        )
    )
    slow = sum(
        1 for w in warns if w.status != WarningStatus.closed or (w.closed_at and w.closed_at > w.due_at)
    )
    return {
        "filing_timeliness": _ratio(timely, len(events)),
        "ledger_completeness": _ratio(wb_closed, wb_total),
        "mass_balance_accuracy": max(0.0, 100.0 - 25.0 * mb),
        "credential_currency": _ratio(current, len(creds)),
        "warnings": max(0.0, 100.0 - 10.0 * len(warns) - 10.0 * slow),
        # Training records come from the quiz domain; until linked, full marks (documented).
        "training": 100.0 if training is None else float(training),
    }


def stars_for(score: float) -> int:
    return next(stars for floor, stars in rules.STAR_THRESHOLDS if score >= floor)


def next_star(score: float, stars: int, values: dict[str, float]) -> dict | None:
    if stars >= 5:
        return None
    floor = next(f for f, s in rules.STAR_THRESHOLDS if s == stars + 1)
    gaps = sorted(((rules.RATING_WEIGHTS[k] * (100 - v) / 100, k) for k, v in values.items()), reverse=True)
    return {
        "stars": stars + 1,
        "points_needed": round(floor - score, 1),
        "biggest_gains": [
            {"indicator": k, "name": INDICATOR_NAMES[k], "points_available": round(g, 1)}
            for g, k in gaps[:3]
            if g > 0
        ],
    }


def rate_quarter(
    session: Session, enterprise_id: int, quarter: str, training: float | None = None
) -> StarRating:
    """Compute and store the quarter's rating (recomputing replaces it: idempotent)."""
    values = indicators(session, enterprise_id, quarter, training)
    score = round(sum(rules.RATING_WEIGHTS[k] * v / 100 for k, v in values.items()), 1)
    row = session.scalar(
        select(StarRating).where(StarRating.enterprise_id == enterprise_id, StarRating.quarter == quarter)
    )
    if row is None:
        row = StarRating(enterprise_id=enterprise_id, quarter=quarter)
        session.add(row)
    row.score, row.stars, row.indicators, row.weights_version = (
        Decimal(str(score)),
        stars_for(score),
        values,
        rules.RATING_VERSION,
    )
    session.flush()
    return row


def summary(session: Session, actor: Actor, enterprise_id: int, quarter: str) -> dict:
    """What the enterprise sees: score, stars, indicators with weights, change, next star."""
    require_reader(session, actor, enterprise_id)
    row = session.scalar(
        select(StarRating).where(StarRating.enterprise_id == enterprise_id, StarRating.quarter == quarter)
    )
    if row is None:
        row = rate_quarter(session, enterprise_id, quarter)
    prev = session.scalar(
        select(StarRating).where(
            StarRating.enterprise_id == enterprise_id, StarRating.quarter == previous_quarter(quarter)
        )
    )
    score = float(row.score)
    return {
        "quarter": quarter,
        "score": score,
        "stars": row.stars,
        "weights_version": row.weights_version,
        "indicators": [
            {"indicator": k, "name": INDICATOR_NAMES[k], "weight": rules.RATING_WEIGHTS[k], "value": v}
            for k, v in row.indicators.items()
        ],
        "change": None
        if prev is None
        else {"score": round(score - float(prev.score), 1), "stars": row.stars - prev.stars},
        "next_star": next_star(score, row.stars, row.indicators),
        "inspections_per_year": rules.INSPECTIONS_PER_YEAR[row.stars],
    }
