"""The periodic table: Asia/Shanghai cron slots, one start per slot across schedulers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from jobs.periodic import latest_slot, periodic_table, register_periodic, run_due
from models.platform import AuditEntry, OutboxItem, OutboxStatus

_runs: list[datetime] = []


def practice_reminder(session, now: datetime) -> dict:
    """Stands in for a domain's function: records the slot it ran for."""
    _runs.append(now)
    session.add(AuditEntry(action="test.periodic", object_type="slot", object_id=now.isoformat(), data={}))
    return {"slot": now.isoformat()}


@pytest.fixture
def registered():
    from jobs import periodic

    entry = register_periodic("test_practice", "30 8 * * *", f"{__name__}:practice_reminder", queue="default")
    _runs.clear()
    yield entry
    periodic._TABLE.pop("test_practice", None)


def test_cron_slots_are_in_shanghai_time(registered) -> None:
    # 08:30 in Shanghai is 00:30 UTC.
    assert latest_slot(registered, datetime(2026, 11, 28, 0, 31, tzinfo=UTC)) == datetime(
        2026, 11, 28, 0, 30, tzinfo=UTC
    )
    assert latest_slot(registered, datetime(2026, 11, 28, 0, 30, tzinfo=UTC)) == datetime(
        2026, 11, 28, 0, 30, tzinfo=UTC
    )
    assert latest_slot(registered, datetime(2026, 11, 28, 0, 29, tzinfo=UTC)).day == 27


def test_invalid_cron_or_queue_is_refused() -> None:
    with pytest.raises(ValueError, match="cron"):
        register_periodic("bad", "61 * * * *", "x:y")
    with pytest.raises(ValueError, match="queue"):
        register_periodic("bad", "* * * * *", "x:y", queue="nope")


def test_the_reconciler_row_is_in_the_table() -> None:
    names = {p.name: p for p in periodic_table()}
    assert names["outbox_reconciler"].cron == "* * * * *" and names["outbox_reconciler"].inline


def test_a_slot_starts_once_even_with_two_schedulers(app, committed_db, registered) -> None:
    now = datetime(2026, 11, 28, 0, 35, tzinfo=UTC)
    first = dict(run_due(app, now))
    second = dict(run_due(app, now + timedelta(seconds=20)))  # another scheduler, same slot
    assert first["test_practice"] == "started" and second["test_practice"] == "already"
    assert first["outbox_reconciler"] == "started" and second["outbox_reconciler"] == "already"
    rows = committed_db.scalars(select(OutboxItem).where(OutboxItem.kind == "periodic.test_practice")).all()
    assert len(rows) == 1 and rows[0].dedup_key == "periodic:test_practice:20261128T0030Z"
    if app.extensions["zhizhi"].settings.inline_jobs:
        assert rows[0].status == OutboxStatus.done and _runs == [datetime(2026, 11, 28, 0, 30, tzinfo=UTC)]


def test_a_slot_missed_beyond_its_grace_is_not_caught_up(app, committed_db, registered) -> None:
    late = dict(run_due(app, datetime(2026, 11, 28, 7, 0, tzinfo=UTC)))  # 15:00 Shanghai
    assert "test_practice" not in late


def test_flask_jobs_run_due_starts_periodic_rows_and_the_outbox(app, committed_db) -> None:
    out = app.test_cli_runner().invoke(args=["jobs", "run-due"]).output
    assert "periodic outbox_reconciler: started" in out and "periodic quiz_sweep: started" in out
    assert "outbox:" in out and "stuck re-dispatched" in out
