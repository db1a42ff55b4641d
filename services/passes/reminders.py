"""The day-before-visit reminder (the ``passes_visit_reminders`` periodic row, 17:00).

Every approved application whose first visit day is tomorrow in its event's time zone
(``Event.timezone``; at 17:00 in Shanghai it is still the evening before in Honolulu,
so there Shanghai's today is tomorrow) and that holds an active pass gets one reminder
to its applicant through ``services.notify``: an individual or vehicle application one
each, a group application one for the group (the leader applied for everyone; members
have no accounts). The dedup key
``pass-visit:<application or group>:<day>`` makes a re-run of the slot, a retry, a
second scheduler or a re-issued pass send nothing twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import pii
from jobs.reminders import due_for_reminder
from models.jobs import Notification
from models.passes import (
    Application,
    ApplicationKind,
    ApplicationStatus,
    Event,
    PassCredential,
    PassGroup,
    PassStatus,
    Zone,
)

KIND = "passes.visit_reminder"


def reminder_key(application: Application) -> str:
    subject = f"g{application.group_id}" if application.group_id else str(application.id)
    return f"pass-visit:{subject}:{application.visit_from.isoformat()}"


def send_visit_reminders(session: Session, now: datetime) -> dict:
    """Queue tomorrow's reminders; returns counts. Flushes, never commits."""
    from services.notify import notify

    due = list(_due(session, now))
    with_pass = _with_active_pass(session, [a.id for a in due])
    by_key: dict[str, list[Application]] = defaultdict(list)
    for app in due:
        if app.id in with_pass:
            by_key[reminder_key(app)].append(app)
    already = set(
        session.scalars(select(Notification.dedup_key).where(Notification.dedup_key.in_(list(by_key))))
    )
    for key, apps in by_key.items():
        if key not in already:
            notify(session, apps[0].applicant_id, KIND, _data(session, apps), key, now=now)
    return {"due": len(due), "reminders": len(by_key), "queued": len(set(by_key) - already)}


def _due(session: Session, now: datetime) -> Iterator[Application]:
    """Approved applications whose first visit day is tomorrow in their event's time
    zone: one due-date sweep per time zone of the events still running."""
    running = select(Event.timezone).where(Event.ends_at > now).distinct().order_by(Event.timezone)
    for name in session.scalars(running):
        events = select(Event.id).where(Event.timezone == name, Event.ends_at > now)
        for app, _days in due_for_reminder(
            session,
            Application,
            "visit_from",
            now,
            offsets=(1,),
            tz=ZoneInfo(name),
            where=(Application.status == ApplicationStatus.approved, Application.event_id.in_(events)),
        ):
            yield app


def _with_active_pass(session: Session, application_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for i in range(0, len(application_ids), 1000):
        chunk = application_ids[i : i + 1000]
        found.update(
            session.scalars(
                select(PassCredential.application_id).where(
                    PassCredential.application_id.in_(chunk), PassCredential.status == PassStatus.active
                )
            )
        )
    return found


def _data(session: Session, apps: list[Application]) -> dict:
    first = apps[0]
    event = session.get(Event, first.event_id)
    zone = session.scalar(select(Zone).where(Zone.event_id == event.id, Zone.ring == first.ring))
    if first.group_id:
        group = session.get(PassGroup, first.group_id)
        who = f"您的团组“{group.name}”（{len(apps)} 人）"
    elif first.kind == ApplicationKind.vehicle:
        who = f"您登记的车辆 {pii.mask_plate(first.plate or '')}"
    else:
        who = "您"
    return {
        "who": who,
        "event": event.name,
        "day": _day(first.visit_from),
        "ring": zone.name if zone else f"第 {first.ring} 层",
        "window": f"{first.time_from}—{first.time_to}",
    }


def _day(day: date) -> str:
    return f"{day.month}月{day.day}日"
