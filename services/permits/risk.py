"""Risk models (design/permits.md "Risk models"); each signal is explainable.

Every model reads a window of ledger/trip data, compares it with a threshold from
``rules.RISK`` and raises (or resolves) a signal that records the rule, the inputs, the
threshold and when it is re-evaluated. ``evaluate_enterprise`` runs all of them (nightly).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.permits.credentials import Credential, CredentialKind
from models.permits.ledger import EventKind, EventStatus, LedgerEvent, TripSegment, Waybill
from services.permits import rules, signals
from services.permits.catalogue import qty

TZ = ZoneInfo("Asia/Shanghai")


# --- fatigue driving -----------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """Driving with no rest of at least ``min_rest_minutes`` in between."""

    start: datetime
    end: datetime
    driving_minutes: float
    night: bool


def _is_night(moment: datetime, cfg: dict) -> bool:
    hour = moment.astimezone(TZ).hour
    return hour >= cfg["night_start_hour"] or hour < cfg["night_end_hour"]


def _overlaps_night(start: datetime, end: datetime, cfg: dict) -> bool:
    t = start
    while t < end:
        if _is_night(t, cfg):
            return True
        t += timedelta(minutes=10)
    return _is_night(end - timedelta(seconds=1), cfg)


def driving_blocks(segments: list[tuple[datetime, datetime]], cfg: dict | None = None) -> list[Block]:
    """Merge segments separated by less than the minimum rest into continuous blocks."""
    cfg = cfg or rules.RISK["fatigue_driving"]
    rest = timedelta(minutes=cfg["min_rest_minutes"])
    blocks: list[list] = []
    for start, end in sorted(segments):
        if blocks and start - blocks[-1][1] < rest:
            blocks[-1][1] = max(blocks[-1][1], end)
            blocks[-1][2] += (end - start).total_seconds() / 60
        else:
            blocks.append([start, end, (end - start).total_seconds() / 60])
    return [Block(s, e, m, _overlaps_night(s, e, cfg)) for s, e, m in blocks]


def fatigue_violations(segments: list[tuple[datetime, datetime]], cfg: dict | None = None) -> list[Block]:
    """Blocks longer than 4 h by day or 2 h at night (thresholds from ``rules.RISK``)."""
    cfg = cfg or rules.RISK["fatigue_driving"]
    return [
        b
        for b in driving_blocks(segments, cfg)
        if b.driving_minutes > (cfg["night_max_minutes"] if b.night else cfg["day_max_minutes"])
    ]


def evaluate_fatigue(session: Session, enterprise_id: int, since: datetime, now: datetime) -> int:
    """Raise a fatigue signal on the carrier for every over-long block since ``since``."""
    cfg = rules.RISK["fatigue_driving"]
    rows = session.execute(
        select(TripSegment.driver_id, TripSegment.started_at, TripSegment.ended_at).where(
            TripSegment.enterprise_id == enterprise_id, TripSegment.started_at >= since
        )
    ).all()
    by_driver: dict[int, list] = {}
    for driver_id, start, end in rows:
        by_driver.setdefault(driver_id, []).append((start, end))
    n = 0
    for driver_id, segs in by_driver.items():
        for b in fatigue_violations(segs, cfg):
            limit = cfg["night_max_minutes"] if b.night else cfg["day_max_minutes"]
            signals.raise_signal(
                session,
                enterprise_id,
                "fatigue_driving",
                f"driver:{driver_id}:{b.start:%Y%m%d%H%M}",
                rule=f"连续驾驶超过{limit // 60}小时未休息{cfg['min_rest_minutes']}分钟以上"
                f"（{'夜间' if b.night else '日间'}）",
                inputs={
                    "driver_id": driver_id,
                    "start": b.start.isoformat(),
                    "end": b.end.isoformat(),
                    "driving_minutes": round(b.driving_minutes),
                    "night": b.night,
                },
                threshold={
                    "max_minutes": limit,
                    "min_rest_minutes": cfg["min_rest_minutes"],
                    "source": cfg["source"],
                },
                now=now,
            )
            n += 1
    return n


# --- volume models -------------------------------------------------------------


def _sum(session: Session, enterprise_id: int, kind: EventKind, start: datetime, end: datetime) -> Decimal:
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEvent.quantity), 0)).where(
            LedgerEvent.enterprise_id == enterprise_id,
            LedgerEvent.kind == kind,
            LedgerEvent.status == EventStatus.filed,
            LedgerEvent.occurred_at >= start,
            LedgerEvent.occurred_at < end,
        )
    )
    return Decimal(str(total))


def _surge(
    session: Session, enterprise_id: int, model: str, kind: EventKind, now: datetime, rule: str
) -> bool:
    cfg = rules.RISK[model]
    window, base_days = cfg["window_days"], cfg["baseline_days"]
    recent = _sum(session, enterprise_id, kind, now - timedelta(days=window), now)
    base_end = now - timedelta(days=window)
    baseline = _sum(session, enterprise_id, kind, base_end - timedelta(days=base_days), base_end)
    daily = baseline / base_days
    limit = daily * window * Decimal(str(cfg["factor"]))
    # One rolling signal per enterprise and model: re-evaluation raises or resolves it.
    subject = f"rolling:{kind.value}"
    if daily > 0 and recent > limit:
        signals.raise_signal(
            session,
            enterprise_id,
            model,
            subject,
            rule=rule,
            inputs={
                f"last_{window}d": qty(recent),
                f"baseline_{base_days}d": qty(baseline),
                "baseline_daily_avg": qty(daily),
            },
            threshold={"factor": cfg["factor"], "limit": qty(limit)},
            now=now,
        )
        return True
    signals.resolve_signal(session, enterprise_id, model, subject, now)
    return False


def evaluate_production_surge(session: Session, enterprise_id: int, now: datetime) -> bool:
    return _surge(
        session,
        enterprise_id,
        "production_surge",
        EventKind.produce,
        now,
        "近7日产量超过前90日日均产量×7的3倍",
    )


def evaluate_consumption(session: Session, enterprise_id: int, now: datetime) -> bool:
    return _surge(
        session,
        enterprise_id,
        "consumption_anomaly",
        EventKind.consume,
        now,
        "近7日使用量远高于本企业前90日滚动基线（3倍）",
    )


def evaluate_cumulative_purchase(session: Session, enterprise_id: int, now: datetime) -> bool:
    """One buyer's receipts from all sellers over 30 days vs its previous three 30-day periods."""
    cfg = rules.RISK["cumulative_purchase"]
    period = timedelta(days=30)
    recent = _sum(session, enterprise_id, EventKind.receive, now - period, now)
    previous = [
        _sum(session, enterprise_id, EventKind.receive, now - period * (i + 1), now - period * i)
        for i in range(1, cfg["baseline_months"] + 1)
    ]
    usual = sum(previous) / len(previous)
    sellers = session.scalar(
        select(func.count(func.distinct(Waybill.seller_id))).where(
            Waybill.buyer_id == enterprise_id, Waybill.created_at >= now - period
        )
    )
    limit = usual * Decimal(str(cfg["factor"]))
    subject = "rolling:30d"
    if usual > 0 and recent > limit:
        signals.raise_signal(
            session,
            enterprise_id,
            "cumulative_purchase",
            subject,
            rule="同一购买方30日内从所有销售方累计购入量超过其以往月均水平的2倍",
            inputs={
                "last_30d": qty(recent),
                "previous_periods": [qty(p) for p in previous],
                "sellers": sellers,
            },
            threshold={"factor": cfg["factor"], "limit": qty(limit)},
            now=now,
        )
        return True
    signals.resolve_signal(session, enterprise_id, "cumulative_purchase", subject, now)
    return False


# --- credential lapses -----------------------------------------------------------

TRIP_KINDS = (
    CredentialKind.vehicle_registration,
    CredentialKind.road_transport,
    CredentialKind.driving_licence,
    CredentialKind.driver_qualification,
)


def evaluate_overdue_inspections(session: Session, enterprise_id: int, now: datetime) -> int:
    """Vehicles whose registration inspection is overdue (yellow until the vehicle is used)."""
    cfg = rules.RISK["credential_lapse"]
    today = now.astimezone(TZ).date()
    latest: dict[int, Credential] = {}
    for c in session.scalars(
        select(Credential).where(
            Credential.enterprise_id == enterprise_id, Credential.kind == CredentialKind.vehicle_registration
        )
    ):
        if c.vehicle_id not in latest or c.valid_until > latest[c.vehicle_id].valid_until:
            latest[c.vehicle_id] = c
    n = 0
    for c in latest.values():
        if c.valid_until < today:
            signals.raise_signal(
                session,
                enterprise_id,
                "credential_lapse",
                f"credential:{c.id}",
                rule="车辆检验逾期（行驶证检验有效期已过）",
                inputs={"credential": c.number, "plate": c.plate, "valid_until": c.valid_until.isoformat()},
                threshold={"valid_until": c.valid_until.isoformat()},
                now=now,
                severity=cfg["inspection_overdue_severity"],
            )
            n += 1
    return n


def evaluate_credential_lapses(session: Session, enterprise_id: int, since: datetime, now: datetime) -> int:
    """Trips driven with an expired vehicle or driver credential (a hard violation: red)."""
    n = 0
    segs = session.execute(
        select(TripSegment.id, TripSegment.driver_id, TripSegment.vehicle_id, TripSegment.started_at).where(
            TripSegment.enterprise_id == enterprise_id, TripSegment.started_at >= since
        )
    ).all()
    for _seg_id, driver_id, vehicle_id, started in segs:
        day = started.astimezone(TZ).date()
        creds = session.scalars(
            select(Credential).where(
                Credential.enterprise_id == enterprise_id,
                Credential.kind.in_(TRIP_KINDS),
                (Credential.person_id == driver_id) | (Credential.vehicle_id == vehicle_id),
            )
        )
        latest: dict[tuple, Credential] = {}
        for c in creds:
            key = (c.kind, c.person_id, c.vehicle_id)
            if key not in latest or c.valid_until > latest[key].valid_until:
                latest[key] = c
        for c in latest.values():
            if c.valid_until < day:
                signals.raise_signal(
                    session,
                    enterprise_id,
                    "credential_lapse",
                    f"credential:{c.id}",
                    rule="证照过期后仍在运输中使用（车辆检验逾期或证件过期）",
                    inputs={
                        "credential": c.number,
                        "kind": c.kind.value,
                        "valid_until": c.valid_until.isoformat(),
                        "used_on": day.isoformat(),
                    },
                    threshold={"valid_until": c.valid_until.isoformat()},
                    now=now,
                )
                n += 1
    return n


def evaluate_enterprise(session: Session, enterprise_id: int, now: datetime, lookback_days: int = 92) -> dict:
    """Run every model for one enterprise; returns which fired (for logs and the CLI)."""
    since = now - timedelta(days=lookback_days)
    return {
        "production_surge": evaluate_production_surge(session, enterprise_id, now),
        "consumption_anomaly": evaluate_consumption(session, enterprise_id, now),
        "cumulative_purchase": evaluate_cumulative_purchase(session, enterprise_id, now),
        "fatigue_driving": evaluate_fatigue(session, enterprise_id, since, now),
        # Overdue first: a lapse found in use in the same run then raises it to red.
        "inspection_overdue": evaluate_overdue_inspections(session, enterprise_id, now),
        "credential_lapse": evaluate_credential_lapses(session, enterprise_id, since, now),
    }
