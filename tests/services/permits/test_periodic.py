from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from models.platform import OutboxItem
from services.permits import periodic


def test_schedule_queues_next_slots_once(db):
    now = datetime(2026, 11, 2, 2, 30, tzinfo=UTC)  # 10:30 Asia/Shanghai
    first = periodic.schedule(db, now)
    again = periodic.schedule(db, now)
    assert first["daily"] and first["hourly"] and again == {"daily": None, "hourly": None}
    rows = {r.kind: r for r in db.scalars(select(OutboxItem).where(OutboxItem.kind.like("permits.%ly")))}
    assert rows["permits.daily"].next_attempt_at == datetime(2026, 11, 3, 1, 0, tzinfo=UTC)  # 09:00 next day
    assert rows["permits.hourly"].next_attempt_at == datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


def test_daily_run_is_idempotent(db, world):
    now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    first = periodic.run_daily(db, now)
    second = periodic.run_daily(db, now)
    assert second["reminders"] == 0 and second["expired"] == 0
    assert first["warnings_escalated"] == second["warnings_escalated"] == 0
