"""Officers' jurisdiction over events: the one check every officer service calls.

An event belongs to an org unit (``Event.org_unit_id``); an officer may read or change
it, and anything that hangs off it (zones, gates, keys, applications, passes, alerts,
trust entries, event watch entries, the dashboard), when an officer grant of theirs
covers that unit, as ``core.auth.Actor.covers`` decides and as alerts are routed
(``jobs.passes.officers_covering``): a grant without a unit covers every event, one on
a unit covers the events of its subtree, and an event without a unit is covered by
grants without one only. Admins cover everything. Outside that: 403
``out_of_jurisdiction`` (as for trainers and portraits), after the 404 of a missing row.

Global watch entries (no event) have no unit and no owner in the schema: any officer
may list, add, edit and end them, as before (a district puts a wanted person on the list
for every event; they hold no data of another district's applications). Ending or
easing one changes screening in every district, and each change is audited with its
officer; a stricter rule (only officers without a unit) would shut district officers out
of a list they rely on, and an owning unit per entry would need a column.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, or_, select, true
from sqlalchemy.orm import Session

from core.auth import Actor, require_role
from core.errors import Forbidden, NotFound
from models.identity import OrgUnit, Role
from models.passes import Event, WatchEntry

OFFICER = Role.officer.value
EVERYWHERE = "/"


def covers_all(actor: Actor) -> bool:
    """The actor covers every event (admin, or an officer grant without a unit)."""
    return actor.has_role("admin") or EVERYWHERE in actor.jurisdictions(OFFICER)


def covers(session: Session, actor: Actor, event: Event) -> bool:
    if covers_all(actor):
        return True
    if event.org_unit_id is None:
        return False
    path = session.scalar(select(OrgUnit.path).where(OrgUnit.id == event.org_unit_id))
    return actor.covers(path, OFFICER)


def officer_event(session: Session, actor: Actor, event_id: int, *, lock: bool = False) -> Event:
    """The event, for an officer whose jurisdiction covers it (see module doc): 404
    ``event_not_found`` when there is none, 403 ``out_of_jurisdiction`` otherwise.
    ``lock`` reads it ``FOR UPDATE``. Read only."""
    require_role(actor, OFFICER)
    event = session.get(Event, event_id, with_for_update=lock)
    if event is None:
        raise NotFound("活动不存在", code="event_not_found")
    if not covers(session, actor, event):
        raise Forbidden("该活动不在您的管辖范围内", code="out_of_jurisdiction")
    return event


def watch_entry(session: Session, actor: Actor, entry_id: int, *, lock: bool = False) -> WatchEntry:
    """A watch entry an officer may manage: a global one, or one of an event of their
    jurisdiction (404 ``watch_entry_not_found``, 403 ``out_of_jurisdiction``)."""
    require_role(actor, OFFICER)
    entry = session.get(WatchEntry, entry_id, with_for_update=lock)
    if entry is None:
        raise NotFound("关注名单条目不存在", code="watch_entry_not_found")
    if entry.event_id is not None:
        officer_event(session, actor, entry.event_id)
    return entry


def visible_events(actor: Actor) -> Any:
    """SQL condition on ``Event``: the events the officer's jurisdiction covers."""
    if covers_all(actor):
        return true()
    paths = actor.jurisdictions(OFFICER)
    if not paths:
        return false()
    unit_path = select(OrgUnit.path).where(OrgUnit.id == Event.org_unit_id).scalar_subquery()
    return or_(*[unit_path.startswith(p, autoescape=True) for p in paths])
