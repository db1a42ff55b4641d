"""The domains' periodic rows run through the table (once per slot)."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs.periodic import latest_slot, periodic_table
from jobs.schedule import previous_quarter, quiz_sweep


def test_domain_rows_are_in_the_table_with_shanghai_slots() -> None:
    table = {p.name: p for p in periodic_table()}
    for name in ("quiz_sweep", "permits_daily", "permits_hourly", "permits_star_ratings", "passes_flush"):
        assert name in table
    # 09:00 in Shanghai is 01:00 UTC.
    slot = latest_slot(table["permits_daily"], datetime(2026, 11, 28, 1, 30, tzinfo=UTC))
    assert slot == datetime(2026, 11, 28, 1, 0, tzinfo=UTC)


def test_previous_quarter_in_shanghai_time() -> None:
    assert previous_quarter(datetime(2026, 1, 1, 3, tzinfo=UTC)) == "2025Q4"
    assert previous_quarter(datetime(2026, 4, 1, 3, tzinfo=UTC)) == "2026Q1"
    # 31 Dec 20:00 UTC is already 1 Jan in Shanghai.
    assert previous_quarter(datetime(2025, 12, 31, 20, tzinfo=UTC)) == "2025Q4"


def test_quiz_sweep_row_runs_on_an_empty_database(app, db) -> None:
    with app.app_context():  # as the scheduler runs it
        got = quiz_sweep(db, datetime(2026, 11, 28, 1, 0, tzinfo=UTC))
    assert got == {"submits_recorded": 0, "closed": 0, "finalized": []}
