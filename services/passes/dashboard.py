"""Numbers a screen polls: applications by status and day, passages per gate and hour,
people inside per ring (as the gates count them), open alerts. Read-only; PostgreSQL
read replicas can serve these."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth import Actor
from core.db import utcnow
from models.passes import Alert, AlertStatus, Application, Event, Gate, Passage, Zone
from services.passes import hotstate, scope


def applications_by_status_day(session: Session, actor: Actor, event_id: int) -> list[dict]:
    scope.officer_event(session, actor, event_id)
    rows = session.execute(
        select(Application.visit_from, Application.status, func.count())
        .where(Application.event_id == event_id)
        .group_by(Application.visit_from, Application.status)
        .order_by(Application.visit_from)
    ).all()
    return [{"day": d.isoformat(), "status": s.value, "count": n} for d, s, n in rows]


def passages_per_gate_hour(
    session: Session, actor: Actor, event_id: int, *, hours: int = 24, now: datetime | None = None
) -> list[dict]:
    scope.officer_event(session, actor, event_id)
    now = now or utcnow()
    tz = ZoneInfo(session.get(Event, event_id).timezone)
    rows = session.execute(
        select(Passage.gate_id, Passage.direction, Passage.scanned_at).where(
            Passage.event_id == event_id, Passage.scanned_at >= now - timedelta(hours=hours)
        )
    ).all()
    counts: dict[tuple, int] = defaultdict(int)
    for gate_id, direction, at in rows:
        hour = at.astimezone(tz).replace(minute=0, second=0, microsecond=0)
        counts[(gate_id, hour.isoformat(), direction)] += 1
    names = dict(session.execute(select(Gate.id, Gate.name).where(Gate.event_id == event_id)).all())
    return [
        {"gate_id": g, "gate": names.get(g), "hour": h, "direction": d, "count": n}
        for (g, h, d), n in sorted(counts.items())
    ]


def inside_per_ring(session: Session, actor: Actor, event_id: int, *, redis=None) -> list[dict]:
    """People inside each ring, as the gates count them: an entry at ring r puts the pass
    inside r, an exit at ring r takes it out of every ring >= r it was inside. Read from
    the gates' own occupancy counters in Redis; without Redis (or when it is down),
    replayed from the recorded passages, which lag the gates by the flush interval."""
    scope.officer_event(session, actor, event_id)
    zones = session.execute(select(Zone.ring, Zone.name).where(Zone.event_id == event_id).order_by(Zone.ring))
    counts = None
    if redis is not None:
        try:
            counts = {int(k): int(v) for k, v in redis.hgetall(hotstate.key(event_id, "inside")).items()}
        except (RedisConnectionError, RedisTimeoutError):
            counts = None
    if counts is None:
        counts = _inside_from_passages(session, event_id)
    return [{"ring": ring, "name": name, "inside": max(0, counts.get(ring, 0))} for ring, name in zones]


def _inside_from_passages(session: Session, event_id: int) -> dict[int, int]:
    rows = session.execute(
        select(Passage.pass_id, Passage.ring, Passage.direction)
        .where(Passage.event_id == event_id)
        .order_by(Passage.pass_id, Passage.scanned_at, Passage.id)
        .execution_options(yield_per=5000)
    )
    counts: Counter[int] = Counter()
    current, inside = None, set()
    for pass_id, ring, direction in rows:
        if pass_id != current:
            counts.update(inside)
            current, inside = pass_id, set()
        if direction == "in":
            inside.add(ring)
        else:
            inside = {r for r in inside if r < ring}
    counts.update(inside)
    return dict(counts)


def open_alerts(session: Session, actor: Actor, event_id: int) -> dict:
    scope.officer_event(session, actor, event_id)
    rows = session.execute(
        select(Alert.kind, func.count())
        .where(Alert.event_id == event_id, Alert.status == AlertStatus.open)
        .group_by(Alert.kind)
    ).all()
    return {"total": sum(n for _k, n in rows), "by_kind": {k: n for k, n in rows}}
