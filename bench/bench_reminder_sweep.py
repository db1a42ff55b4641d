"""The 09:00 expiry sweep over 1,000,000 credentials: index scan, cost ∝ due rows.

The permits branch (which owns the credentials table) has not landed, so this bench
generates a table of the same shape (id, person_id, status, expires_on DATE, index on
(status, expires_on)) and runs the sweep pattern of ``jobs.reminders`` against it:
rows expiring in exactly 30 / 7 / 1 days (Asia/Shanghai), active only, keyset batches.
It prints EXPLAIN (fails if the plan has a sequential scan), the time per sweep and the
ratio to a full-table ``count(*)`` measured in the same run.

Run: ``DATABASE_URL=postgresql://... .venv/bin/python bench/bench_reminder_sweep.py
[--rows 1000000]`` (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Date, Index, String, create_engine, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from jobs.reminders import due_for_reminder, due_query, local_today


class Base(DeclarativeBase):
    pass


class Credential(Base):
    __tablename__ = "bench_credentials"
    __table_args__ = (Index("ix_bench_credentials_status_expires", "status", "expires_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))
    expires_on: Mapped[date] = mapped_column(Date)


def _median(fn, repeat: int = 5) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        raise SystemExit("set DATABASE_URL to PostgreSQL")
    base, _, admin_db = url.replace("postgresql://", "postgresql+psycopg://", 1).rpartition("/")
    name = f"zz_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{base}/{admin_db}", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(f"{base}/{name}")
    try:
        Base.metadata.create_all(engine)
        now = datetime.now(UTC)
        today = local_today(now)
        t = time.perf_counter()
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO bench_credentials (person_id, status, expires_on) "
                    "SELECT g, CASE WHEN g % 10 = 0 THEN 'revoked' ELSE 'active' END, "
                    "CAST(:today AS date) + CAST((g::bigint * 7919) % 1096 - 365 AS integer) "
                    "FROM generate_series(1, :n) g"
                ),
                {"today": today, "n": args.rows},
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE bench_credentials"))
        print(f"generated {args.rows:,} credentials in {time.perf_counter() - t:.1f}s")

        active = [Credential.status == "active"]
        stmt = due_query(Credential, "expires_on", today, (30, 7, 1), active)
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
        with Session(engine) as s:
            plan = [r[0] for r in s.execute(text("EXPLAIN " + sql))]
            print("EXPLAIN (sweep):\n  " + "\n  ".join(plan))
            assert not any("Seq Scan" in line for line in plan), "sweep must not scan the table"

            def sweep() -> int:
                return sum(1 for _ in due_for_reminder(s, Credential, "expires_on", now, where=active))

            def full_count() -> int:
                return s.execute(text("SELECT count(*) FROM bench_credentials")).scalar_one()

            sweep_t, due = _median(sweep)
            count_t, total = _median(full_count)
        print(f"due rows: {due:,} of {total:,}")
        print(f"sweep: {sweep_t * 1000:.1f} ms per sweep (reads + ORM objects for every due row)")
        print(f"full-table count(*): {count_t * 1000:.1f} ms")
        print(f"ratio sweep / full count: {sweep_t / count_t:.2f}")
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
