"""The domains' periodic rows run through the table (once per slot)."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs.periodic import latest_slot, periodic_table
from jobs.schedule import (
    previous_quarter,
    quiz_competition_notices,
    quiz_levels,
    quiz_practice_reminder,
    quiz_sweep,
)


def test_domain_rows_are_in_the_table_with_shanghai_slots() -> None:
    table = {p.name: p for p in periodic_table()}
    for name in (
        "quiz_sweep",
        "quiz_practice_reminder",
        "quiz_competition_notices",
        "quiz_levels",
        "permits_daily",
        "permits_hourly",
        "permits_star_ratings",
        "passes_flush",
    ):
        assert name in table
    # 09:00 in Shanghai is 01:00 UTC.
    slot = latest_slot(table["permits_daily"], datetime(2026, 11, 28, 1, 30, tzinfo=UTC))
    assert slot == datetime(2026, 11, 28, 1, 0, tzinfo=UTC)


def test_quiz_reminder_and_level_rows() -> None:
    table = {p.name: p for p in periodic_table()}
    assert table["quiz_practice_reminder"].cron == "30 8 * * *"
    assert table["quiz_practice_reminder"].func == "jobs.schedule:quiz_practice_reminder"
    assert table["quiz_competition_notices"].cron == "*/5 * * * *"
    assert table["quiz_levels"].cron == "0 3 1 1,4,7,10 *"
    assert not any(
        table[n].inline for n in ("quiz_practice_reminder", "quiz_competition_notices", "quiz_levels")
    )
    # 08:30 in Shanghai is 00:30 UTC; the quarterly slot of April is 31 March 19:00 UTC.
    at = datetime(2026, 11, 28, 0, 40, tzinfo=UTC)
    assert latest_slot(table["quiz_practice_reminder"], at) == datetime(2026, 11, 28, 0, 30, tzinfo=UTC)
    assert latest_slot(table["quiz_competition_notices"], at) == at
    april = latest_slot(table["quiz_levels"], datetime(2026, 4, 2, tzinfo=UTC))
    assert april == datetime(2026, 3, 31, 19, 0, tzinfo=UTC) and previous_quarter(april) == "2026Q1"


def test_quiz_rows_run_on_an_empty_database(db) -> None:
    at = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)
    assert quiz_practice_reminder(db, at) == {"day": "2026-11-28", "batches": 0}
    assert quiz_competition_notices(db, at) == {"notices": []}
    assert quiz_levels(db, datetime(2026, 9, 30, 19, tzinfo=UTC)) == {"quarter": "2026Q3", "batches": 0}


def test_previous_quarter_in_shanghai_time() -> None:
    assert previous_quarter(datetime(2026, 1, 1, 3, tzinfo=UTC)) == "2025Q4"
    assert previous_quarter(datetime(2026, 4, 1, 3, tzinfo=UTC)) == "2026Q1"
    # 31 Dec 20:00 UTC is already 1 Jan in Shanghai.
    assert previous_quarter(datetime(2025, 12, 31, 20, tzinfo=UTC)) == "2025Q4"


def test_quiz_sweep_row_runs_on_an_empty_database(app, db) -> None:
    with app.app_context():  # as the scheduler runs it
        got = quiz_sweep(db, datetime(2026, 11, 28, 1, 0, tzinfo=UTC))
    assert got == {"submits_recorded": 0, "closed": 0, "finalized": []}
