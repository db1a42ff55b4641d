"""The due-item sweep pattern for daily reminders (expiries 30 / 7 / 1 days ahead).

A sweep asks for rows whose expiry date is exactly one of the reminder offsets from
today (Asia/Shanghai, or a time zone the caller gives), so its cost follows the number
of due rows, not the table size: with an index on ``(status, expires_on)`` (or a partial
index on ``expires_on`` for the active status) PostgreSQL answers with an index scan per
date. Rows are read in keyset batches, and every reminder carries the dedup key
``expiry:<subject>:<id>:<days>`` so a second run of the same day (a retry, another
scheduler) queues nothing new.

Domains call ``due_for_reminder`` from their periodic function, e.g. the permits
domain's ``09:00`` row: ``for row, days in due_for_reminder(...): notify(...)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, literal, select, tuple_
from sqlalchemy.orm import Session

TZ = ZoneInfo("Asia/Shanghai")

#: Days before expiry at which a reminder goes out (design/jobs.md, "daily 09:00").
EXPIRY_OFFSETS: tuple[int, ...] = (30, 7, 1)


def local_today(now: datetime, tz: ZoneInfo = TZ) -> date:
    return now.astimezone(tz).date()


def due_query(
    model: Any, expires: str, today: date, offsets: Sequence[int], where: Sequence[Any] = ()
) -> Select:
    """Rows of ``model`` whose date column ``expires`` is exactly ``today + d`` for a ``d``
    in ``offsets`` (an IN list of dates: one index range per date)."""
    col = getattr(model, expires)
    dates = [today + timedelta(days=d) for d in offsets]
    return select(model).where(col.in_(dates), *where).order_by(col, model.id)


def due_for_reminder(
    session: Session,
    model: Any,
    expires: str,
    now: datetime,
    *,
    offsets: Sequence[int] = EXPIRY_OFFSETS,
    where: Sequence[Any] = (),
    batch: int = 1000,
    tz: ZoneInfo = TZ,
) -> Iterator[tuple[Any, int]]:
    """Yield ``(row, days_before)`` for every due row, read in keyset batches; "today" is
    ``now``'s date in ``tz`` (Asia/Shanghai unless the rows' own zone is given). Read only."""
    today = local_today(now, tz)
    col = getattr(model, expires)
    stmt = due_query(model, expires, today, offsets, where)
    after: tuple[date, int] | None = None
    while True:
        page = (
            stmt
            if after is None
            else stmt.where(tuple_(col, model.id) > tuple_(literal(after[0]), literal(after[1])))
        )
        rows = list(session.scalars(page.limit(batch)))
        for row in rows:
            yield row, (getattr(row, expires) - today).days
        if len(rows) < batch:
            return
        after = (getattr(rows[-1], expires), rows[-1].id)


def reminder_key(subject: str, row_id: int, days: int) -> str:
    return f"expiry:{subject}:{row_id}:{days}"
