"""Numbers a screen polls: applications by status and day, passages per gate and hour,
people inside per ring (entries − exits), open alerts. Read-only; PostgreSQL read
replicas can serve these."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth import Actor, require_role
from core.db import utcnow
from models.passes import Alert, AlertStatus, Application, Event, Gate, Passage


def applications_by_status_day(session: Session, actor: Actor, event_id: int) -> list[dict]:
    require_role(actor, "officer")
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
    require_role(actor, "officer")
    now = now or utcnow()
    event = session.get(Event, event_id)
    tz = ZoneInfo(event.timezone if event else "Asia/Shanghai")
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


def inside_per_ring(session: Session, actor: Actor, event_id: int) -> list[dict]:
    """Entries − exits per ring, from recorded passages (an exit of ring r leaves rings ≥ r,
    but only the passage's own ring is counted: that is what the gate saw)."""
    require_role(actor, "officer")
    rows = session.execute(
        select(Passage.ring, Passage.direction, func.count())
        .where(Passage.event_id == event_id)
        .group_by(Passage.ring, Passage.direction)
    ).all()
    net: dict[int, int] = defaultdict(int)
    for ring, direction, n in rows:
        net[ring] += n if direction == "in" else -n
    return [{"ring": r, "inside": max(0, n)} for r, n in sorted(net.items())]


def open_alerts(session: Session, actor: Actor, event_id: int) -> dict:
    require_role(actor, "officer")
    rows = session.execute(
        select(Alert.kind, func.count())
        .where(Alert.event_id == event_id, Alert.status == AlertStatus.open)
        .group_by(Alert.kind)
    ).all()
    return {"total": sum(n for _k, n in rows), "by_kind": {k: n for k, n in rows}}
