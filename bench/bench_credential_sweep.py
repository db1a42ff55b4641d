"""The 09:00 expiry sweep over 1,000,000 permit credentials (PostgreSQL).

Generates the rows in the real ``permit_credentials`` table (migrated scratch database),
EXPLAINs the sweep's own statement (``services.permits.credentials.due_credentials``,
refusing a plan with a sequential scan), then times ``queue_reminders`` (the sweep that
adds the 30/7/1-day reminder rows, rolled back after each run) against a full-table
``count(*)`` measured in the same run.

Run alone: ``.venv/bin/python -m bench.bench_credential_sweep [--rows 1000000]``; it is
also part of ``make bench``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date, timedelta

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.harness import Row, bench_database

TODAY = date(2026, 11, 28)


def _fill(conn, rows: int) -> None:
    conn.execute(
        text(
            "INSERT INTO permit_enterprises (name, uscc, kind, status, created_at) "
            "VALUES ('压测企业', '91330483MA2BENCH01', 'user', 'active', now())"
        )
    )
    # valid_until spread over ~3 years around today; 10% already expired/revoked.
    conn.execute(
        text(
            """
        INSERT INTO permit_credentials
            (enterprise_id, kind, number, scope, valid_until, status, created_at)
        SELECT (SELECT min(id) FROM permit_enterprises), 'driver_qualification',
               'B' || g, '', CAST(:start AS date) + ((g::bigint * 7919) % 1095)::int,
               CASE WHEN g % 10 = 0 THEN 'expired' ELSE 'active' END, now()
        FROM generate_series(1, :rows) AS g
        """
        ),
        {"rows": rows, "start": TODAY - timedelta(days=365)},
    )
    conn.execute(text("ANALYZE permit_credentials"))


def _timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def measure(database_url: str, rows: int) -> list[Row]:
    from services.permits.credentials import due_credentials, queue_reminders

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        _fill(conn, rows)
    stmt = due_credentials(TODAY + timedelta(days=30))
    compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {compiled}")))
        count_ms = _timed(lambda: conn.execute(text("SELECT count(*) FROM permit_credentials")).scalar())
    if "Seq Scan" in plan:
        raise SystemExit(f"the sweep plans a sequential scan:\n{plan}")

    offsets = (30, 7, 1)

    def find() -> None:
        with engine.connect() as c:
            for days in offsets:
                c.execute(due_credentials(TODAY + timedelta(days=days))).all()

    find_ms = _timed(find)
    added: list[int] = []

    def sweep() -> None:
        with Session(engine) as s:
            added.append(queue_reminders(s, TODAY))
            s.rollback()

    sweep_ms = _timed(sweep)
    engine.dispose()
    scan = next(line.strip() for line in plan.splitlines() if "Scan" in line)
    return [
        Row(
            f"expiry sweep: find due of {rows:,}",
            find_ms,
            "ms",
            "count(*) full table",
            count_ms,
            target="index scan",
            met=True,
            note=f"plan: {scan[:90]}",
        ),
        Row(
            "expiry sweep: find + queue reminders",
            sweep_ms,
            "ms",
            "count(*) full table",
            count_ms,
            note=f"{added[-1]} reminder rows (30/7/1 days), one outbox insert each",
        ),
    ]


def run(database_url: str, baselines: dict) -> list[Row]:
    return measure(database_url, 1_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from bench.harness import print_table

    with bench_database() as url:
        print_table(measure(url, args.rows))


if __name__ == "__main__":
    main()
