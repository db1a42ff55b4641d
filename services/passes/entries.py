"""Officers list and edit watch-list and trust-list entries.

Every edit validates all of its fields before it changes anything, is audited, and
reaches the gates the way adding an entry does: :func:`lists.rescreen` ends trust a
watch entry now contradicts and republishes the watched passes (the gates' ``w``/``a``
flags in Redis) once the change commits. Trust decides whether an ``alert`` entry's
subject raises alerts at the gates, so trust changes republish too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from core import pii
from core.auth import Actor, require_role
from core.db import utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from models.passes import Application, ApplicationKind, Event, TrustEntry, WatchEntry, WatchSeverity
from models.platform import AuditEntry
from services.passes import lists, scope


def watch_query(session: Session, actor: Actor, *, event_id: int | None, active: bool | None) -> Select:
    """Watch entries, for a keyset page: the global ones and those of the events the
    officer's jurisdiction covers; with ``event_id`` (an event of the jurisdiction) those
    that apply to it (its own and the global ones)."""
    require_role(actor, "officer")
    stmt = select(WatchEntry)
    if event_id is not None:
        scope.officer_event(session, actor, event_id)
        stmt = stmt.where(or_(WatchEntry.event_id == event_id, WatchEntry.event_id.is_(None)))
    elif not scope.covers_all(actor):
        visible = select(Event.id).where(scope.visible_events(actor))
        stmt = stmt.where(or_(WatchEntry.event_id.is_(None), WatchEntry.event_id.in_(visible)))
    if active is not None:
        stmt = stmt.where(WatchEntry.active.is_(active))
    return stmt


def watch_subject(entry: WatchEntry) -> str:
    """What officers see of a watched subject: the masked ID/plate, or the masked name
    and birth year of a partial entry."""
    if entry.subject_hint:
        return entry.subject_hint
    born = f"（{entry.birth_date.year} 年生）" if entry.birth_date else ""
    return pii.mask_name(entry.name or "") + born


def update_watch_entry(
    session: Session, actor: Actor, entry_id: int, changes: dict, *, now: datetime | None = None
) -> WatchEntry:
    """Change an active entry's reason, severity or validity (``valid_until`` None: no
    end). Making it stricter (severity ``reject``, a later or no end) stamps
    ``revised_at``, so trust granted before is re-screened as against a new entry;
    the gates' watched passes are republished after commit. Ending an entry is
    :func:`lists.deactivate_watch_entry`. Idempotent: the same change twice is a no-op
    the second time."""
    now = now or utcnow()
    entry = scope.watch_entry(session, actor, entry_id, lock=True)
    if not entry.active:
        raise Conflict("该关注名单条目已停用，请新增条目", code="watch_entry_inactive")
    if "valid_until" in changes and changes["valid_until"] is not None and changes["valid_until"] <= now:
        raise ValidationFailed(fields={"valid_until": "有效期须晚于当前时间"})
    severity = WatchSeverity(changes.get("severity", entry.severity))
    until = changes.get("valid_until", entry.valid_until)
    stricter = (severity == WatchSeverity.reject and entry.severity != WatchSeverity.reject) or (
        "valid_until" in changes
        and entry.valid_until is not None
        and (until is None or until > entry.valid_until)
    )
    before = {
        "reason": entry.reason,
        "severity": entry.severity.value,
        "valid_until": _iso(entry.valid_until),
    }
    entry.reason = changes.get("reason", entry.reason)
    entry.severity, entry.valid_until = severity, until
    if stricter:
        entry.revised_at = now
    after = {"reason": entry.reason, "severity": entry.severity.value, "valid_until": _iso(entry.valid_until)}
    if after != before:
        _audit(session, actor, "passes.watch.update", "pass_watch_entry", entry.id, before, after)
        session.flush()
        lists.rescreen(session, entry.event_id, now=now)
    return entry


def trust_query(session: Session, actor: Actor, event_id: int, *, active: bool | None) -> Select:
    """Trust entries of an event of the officer's jurisdiction, for a keyset page."""
    scope.officer_event(session, actor, event_id)
    stmt = select(TrustEntry).where(TrustEntry.event_id == event_id)
    if active is not None:
        stmt = stmt.where(TrustEntry.active.is_(active))
    return stmt


def trust_subjects(session: Session, event_id: int, subjects: set[str]) -> dict[str, str]:
    """Subject index -> what officers see of it (the masked person or vehicle of one of
    its applications for the event), in one query."""
    if not subjects:
        return {}
    rows = session.execute(
        select(Application.subject_index, Application.kind, Application.name, Application.plate)
        .where(Application.event_id == event_id, Application.subject_index.in_(subjects))
        .order_by(Application.id)
    )
    out: dict[str, str] = {}
    for subject, kind, name, plate in rows:
        if kind == ApplicationKind.vehicle:
            out.setdefault(subject, f"车辆 {pii.mask_plate(plate or '')}")
        else:
            out.setdefault(subject, f"人员 {pii.mask_name(name)}")
    return out


def update_trust_entry(
    session: Session, actor: Actor, entry_id: int, changes: dict, *, now: datetime | None = None
) -> TrustEntry:
    """Change an active trust entry's end (``valid_until``, later than now) or ring (one
    of the event's). Re-screened against the watch list and republished to the gates
    after commit (trust suppresses ``alert`` hits there)."""
    now = now or utcnow()
    entry = _trust_entry(session, actor, entry_id)
    if not entry.active:
        raise Conflict("该信任名单条目已结束", code="trust_entry_ended")
    if "valid_until" in changes and changes["valid_until"] <= now:
        raise ValidationFailed(fields={"valid_until": "有效期须晚于当前时间"})
    if "ring" in changes:
        rings = {z.ring for z in session.get(Event, entry.event_id).zones}
        if changes["ring"] not in rings:
            raise ValidationFailed(fields={"ring": f"区域层级应为 {sorted(rings)} 之一"})
    before = {"valid_until": _iso(entry.valid_until), "ring": entry.ring}
    entry.valid_until = changes.get("valid_until", entry.valid_until)
    entry.ring = changes.get("ring", entry.ring)
    after = {"valid_until": _iso(entry.valid_until), "ring": entry.ring}
    if after != before:
        _audit(session, actor, "passes.trust.update", "pass_trust_entry", entry.id, before, after)
        session.flush()
        lists.rescreen(session, entry.event_id, now=now)
    return entry


def end_trust_entry(
    session: Session, actor: Actor, entry_id: int, *, now: datetime | None = None
) -> TrustEntry:
    """End trust early (``ended_reason`` ``officer_ended``): the subject's ``alert``
    hits alert again at the gates once the change commits. Ending an ended entry
    changes nothing."""
    now = now or utcnow()
    entry = _trust_entry(session, actor, entry_id)
    if not entry.active:
        return entry
    entry.active = False
    entry.ended_reason, entry.ended_at, entry.ended_by_id = "officer_ended", now, actor.person_id
    _audit(
        session, actor, "passes.trust.end", "pass_trust_entry", entry.id, {"active": True}, {"active": False}
    )
    session.flush()
    lists.rescreen(session, entry.event_id, now=now)
    return entry


def _trust_entry(session: Session, actor: Actor, entry_id: int) -> TrustEntry:
    """The entry, locked, for an officer whose jurisdiction covers its event."""
    require_role(actor, "officer")
    entry = session.get(TrustEntry, entry_id, with_for_update=True)
    if entry is None:
        raise NotFound("信任名单条目不存在", code="trust_entry_not_found")
    scope.officer_event(session, actor, entry.event_id)
    return entry


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _audit(
    session: Session, actor: Actor, action: str, obj_type: str, obj_id: int, before: dict, after: dict
) -> None:
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before.get(k) != after[k]}
    session.add(
        AuditEntry(
            actor_id=actor.person_id, action=action, object_type=obj_type, object_id=str(obj_id), data=changed
        )
    )
