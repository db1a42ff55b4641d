"""The demo seed builds the Wuzhen summit and is idempotent."""

from __future__ import annotations

from sqlalchemy import func, select

from models.passes import Application, Event, Gate, Zone
from services.demo import seed_all


def test_demo_seed_builds_the_summit_once(app, db):
    settings = app.extensions["zhizhi"].settings
    seed_all(db, settings)
    seed_all(db, settings)
    event = db.scalars(select(Event)).one()
    zones = db.scalars(select(Zone).where(Zone.event_id == event.id).order_by(Zone.ring))
    assert [z.name for z in zones] == ["外围区", "管控区", "核心区"]
    assert {g.ring for g in db.scalars(select(Gate))} == {1, 2, 3}
    statuses = set(db.scalars(select(Application.status)))
    assert {s.value for s in statuses} == {"approved", "manual_review", "rejected"}
    assert db.scalar(select(func.count()).select_from(Gate).where(Gate.fail_closed.is_(True))) == 1
