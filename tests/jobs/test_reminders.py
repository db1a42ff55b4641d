"""The expiry sweep pattern: exactly 30/7/1 days ahead in Shanghai, keyset batches,
and a second sweep on the same day queues nothing new (dedup keys)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Date, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jobs.reminders import due_for_reminder, local_today, reminder_key
from models.identity import Identity, IdentityKind
from models.jobs import Notification
from services.notify import notify
from tests.helpers import make_person
from tests.jobs.kinds import DATA


class _Base(DeclarativeBase):
    pass


class Cred(_Base):
    __tablename__ = "test_sweep_credentials"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))
    expires_on: Mapped[date] = mapped_column(Date)


@pytest.fixture
def creds(db):
    _Base.metadata.create_all(db.connection())
    return db


def test_due_rows_are_exactly_the_offsets_in_shanghai_time(creds) -> None:
    now = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)  # already 29 Nov in Shanghai
    today = local_today(now)
    assert today == date(2026, 11, 29)
    for days in (0, 1, 2, 7, 8, 30, 31, 7):
        creds.add(Cred(person_id=1, status="active", expires_on=today + timedelta(days=days)))
    creds.add(Cred(person_id=1, status="revoked", expires_on=today + timedelta(days=7)))
    creds.flush()
    found = list(due_for_reminder(creds, Cred, "expires_on", now, where=[Cred.status == "active"], batch=2))
    assert sorted(days for _, days in found) == [1, 7, 7, 30]


def test_a_second_sweep_the_same_day_sends_nothing_new(creds) -> None:
    p = make_person(creds, "citizen")
    creds.add(Identity(person_id=p.id, kind=IdentityKind.dingtalk, app_id="d", external_id="u1"))
    now = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    creds.add(Cred(person_id=p.id, status="active", expires_on=local_today(now) + timedelta(days=7)))
    creds.flush()
    for _ in range(2):
        for row, days in due_for_reminder(creds, Cred, "expires_on", now):
            notify(
                creds,
                row.person_id,
                "test.reminder",
                {**DATA, "days": days},
                reminder_key("cred", row.id, days),
            )
    assert creds.scalar(select(func.count()).select_from(Notification)) == 1
