"""Watch list, trust list and alerts.

* A watch entry matches exactly (blind index of an ID number or a plate; a vehicle's
  driver's ID number too) or partially (name + birth date). Exact ``reject`` refuses;
  exact ``alert`` lets through and alerts officers; partial sends the application to
  manual review and alerts officers.
* A trust entry (an officer cleared an alert, or N clean passages) lets the subject skip
  manual review and suppresses (counts) repeat alerts; it never overrides a rejection.
* Any change to the watch list re-screens the trust list (trust that a new entry
  contradicts ends) and recomputes which passes the gates refuse or alert on.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core import pii
from core.auth import Actor, require_role
from core.db import utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from core.validators import InvalidValue, normalize_plate, normalize_resident_id
from models.passes import (
    Alert,
    AlertStatus,
    Application,
    ApplicationKind,
    Event,
    PassCredential,
    PassStatus,
    TrustEntry,
    WatchEntry,
    WatchSeverity,
)
from models.platform import AuditEntry
from services.passes import hotstate, scope
from services.passes.rules import RULE_SET


def _active_watch(event_id: int, now: datetime):
    return select(WatchEntry).where(
        WatchEntry.active.is_(True),
        or_(WatchEntry.event_id.is_(None), WatchEntry.event_id == event_id),
        or_(WatchEntry.valid_until.is_(None), WatchEntry.valid_until > now),
    )


def add_watch_entry(
    session: Session,
    actor: Actor,
    *,
    event_id: int | None,
    reason: str,
    severity: str,
    id_number: str | None = None,
    plate: str | None = None,
    plate_colour: str | None = None,
    name: str | None = None,
    birth_date: date | None = None,
    valid_until: datetime | None = None,
    now: datetime | None = None,
) -> WatchEntry:
    """Add an entry, then re-screen trust entries and watched passes (see module doc).
    An event's entry needs an officer whose jurisdiction covers the event; a global one
    (``event_id`` None) any officer (``scope``)."""
    require_role(actor, "officer")
    now = now or utcnow()
    if event_id is not None:
        if session.get(Event, event_id) is None:
            raise ValidationFailed("活动不存在", code="event_not_found", fields={"event_id": "活动不存在"})
        scope.officer_event(session, actor, event_id)
    if valid_until is not None and valid_until <= now:
        raise ValidationFailed(fields={"valid_until": "有效期须晚于当前时间"})
    subject, hint = None, None
    try:
        if id_number:
            value = normalize_resident_id(id_number)
            subject, hint = pii.index("resident_id", value), pii.mask_resident_id(value)
        elif plate:
            value = normalize_plate(plate, plate_colour or "blue")
            subject, hint = pii.index("plate", value), pii.mask_plate(value)
    except InvalidValue as exc:
        field = "id_number" if id_number else "plate"
        raise ValidationFailed(exc.message, code=exc.code, fields={field: exc.message}) from None
    if subject is None and not (name and birth_date):
        raise ValidationFailed(fields={"id_number": "需提供身份证号、车牌号，或姓名加出生日期"})
    entry = WatchEntry(
        event_id=event_id,
        subject_index=subject,
        subject_hint=hint,
        name=name,
        birth_date=birth_date,
        reason=reason,
        severity=WatchSeverity(severity),
        valid_until=valid_until,
        created_by_id=actor.person_id,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    _audit(session, actor, "passes.watch.add", "pass_watch_entry", entry.id, {"severity": severity})
    rescreen(session, event_id, now=now)
    return entry


def deactivate_watch_entry(
    session: Session, actor: Actor, entry_id: int, *, now: datetime | None = None
) -> WatchEntry:
    """End an entry (a global one: any officer; an event's: its jurisdiction), then
    re-screen as on adding one."""
    entry = scope.watch_entry(session, actor, entry_id)
    entry.active = False
    _audit(session, actor, "passes.watch.deactivate", "pass_watch_entry", entry.id, {})
    rescreen(session, entry.event_id, now=now or utcnow())
    return entry


def screen_application(session: Session, app: Application, *, now: datetime) -> list[tuple[WatchEntry, str]]:
    """Watch-list hits of an application: (entry, reject|alert|review)."""
    hits = []
    for entry in session.scalars(_active_watch(app.event_id, now)):
        if entry.subject_index is not None:
            if entry.subject_index in (app.subject_index, app.id_index):
                hits.append((entry, entry.severity.value))
        elif entry.name == app.name and entry.birth_date == app.birth_date:
            hits.append((entry, "review"))
    return hits


def find_trust(
    session: Session, event_id: int, subject: str, ring: int, *, now: datetime
) -> TrustEntry | None:
    return session.scalars(
        select(TrustEntry).where(
            TrustEntry.event_id == event_id,
            TrustEntry.subject_index == subject,
            TrustEntry.active.is_(True),
            TrustEntry.ring >= ring,
            TrustEntry.valid_until > now,
        )
    ).first()


def raise_alert(session: Session, *, event_id: int, kind: str, severity: str, message: str, **refs) -> Alert:
    """An open alert plus an outbox row that pushes it to the event's officers."""
    from core import outbox

    alert = Alert(event_id=event_id, kind=kind, severity=severity, message=message[:300], **refs)
    session.add(alert)
    session.flush()
    outbox.add(session, "passes.alert_officers", {"alert_id": alert.id}, dedup_key=f"pass-alert:{alert.id}")
    return alert


def alert_application_hits(
    session: Session, app: Application, hits: list, trust: TrustEntry | None, *, now: datetime
) -> None:
    """Alerts for an application's watch-list hits: one per exact hit, and one for its
    partial (name + birth date) hits together, with the strictest entry's severity (the
    application also goes to manual review). An ``alert``-severity hit of a trusted
    subject is suppressed and counted instead; a ``reject`` one never is."""
    partial = [entry for entry, outcome in hits if outcome == "review"]
    for entry, outcome in hits:
        if outcome == "review":
            continue
        if outcome == "alert" and trust is not None:
            trust.suppressed_count += 1
            continue
        raise_alert(
            session,
            event_id=app.event_id,
            kind="watchlist_application",
            severity=outcome,
            message=f"申请 {app.id} 命中关注名单：{entry.reason}",
            subject_index=app.subject_index,
            application_id=app.id,
            watch_entry_id=entry.id,
        )
    if partial:
        _alert_partial(session, app, partial, trust)


def _alert_partial(session: Session, app: Application, entries: list, trust: TrustEntry | None) -> None:
    """Once per application, even if its rules run again."""
    entry = max(entries, key=lambda e: (e.severity == WatchSeverity.reject, e.id))
    if entry.severity == WatchSeverity.alert and trust is not None:
        trust.suppressed_count += 1
        return
    kind = "watchlist_partial"
    raised = select(Alert.id).where(Alert.application_id == app.id, Alert.kind == kind)
    if session.scalar(raised) is not None:
        return
    raise_alert(
        session,
        event_id=app.event_id,
        kind=kind,
        severity=entry.severity.value,
        message=f"申请 {app.id} 姓名与出生日期疑似命中关注名单，已转人工审核：{entry.reason}",
        subject_index=app.subject_index,
        application_id=app.id,
        watch_entry_id=entry.id,
    )


def watch_flags(session: Session, event_id: int, now: datetime) -> tuple[list[int], list[int]]:
    """(refused, alerted) active passes of watched subjects: an exact ``reject`` entry
    refuses the pass at the gates (``watchlist``); an exact ``alert`` entry lets it
    through and alerts officers, unless the subject is trusted (suppressed)."""
    entries = list(session.scalars(_active_watch(event_id, now).where(WatchEntry.subject_index.is_not(None))))
    if not entries:
        return [], []
    subjects: dict[str, WatchSeverity] = {}
    for e in entries:  # the strictest entry of a subject decides
        if subjects.get(e.subject_index) != WatchSeverity.reject:
            subjects[e.subject_index] = e.severity
    rows = session.execute(
        select(PassCredential.id, Application.subject_index, Application.id_index, PassCredential.ring)
        .join(Application, Application.id == PassCredential.application_id)
        .where(PassCredential.event_id == event_id, PassCredential.status == PassStatus.active)
        .where(or_(Application.subject_index.in_(subjects), Application.id_index.in_(subjects)))
    ).all()
    refused, alerted = [], []
    for pass_id, subject, id_index, ring in rows:
        found = {subjects.get(subject), subjects.get(id_index)}
        if WatchSeverity.reject in found:
            refused.append(pass_id)
        elif not find_trust(session, event_id, subject, ring, now=now):
            alerted.append(pass_id)
    return sorted(refused), sorted(alerted)


def watched_pass_ids(session: Session, event_id: int, now: datetime) -> list[int]:
    """Active passes the gates refuse with ``watchlist`` (see :func:`watch_flags`)."""
    return watch_flags(session, event_id, now)[0]


def gate_watch_entry(session: Session, app: Application, *, now: datetime) -> WatchEntry | None:
    """The exact watch entry behind a gate hit on ``app``'s pass: the strictest, newest."""
    entries = session.scalars(
        _active_watch(app.event_id, now).where(
            WatchEntry.subject_index.in_({app.subject_index, app.id_index})
        )
    ).all()
    return max(entries, key=lambda e: (e.severity == WatchSeverity.reject, e.id), default=None)


def rescreen(session: Session, event_id: int | None, *, now: datetime) -> None:
    """End trust entries a current watch entry contradicts; republish watched passes.

    A watch entry contradicts trust granted before it was added (or last made
    stricter) when it names the trusted subject exactly, or, for a trusted vehicle,
    the ID number of a driver who applied with that plate for the event: trust in a
    vehicle ends once its driver is watched (``ended_reason`` ``driver_watched``)."""
    events = [event_id] if event_id is not None else list(session.scalars(select(Event.id)))
    changed = func.coalesce(WatchEntry.revised_at, WatchEntry.created_at)
    for eid in events:
        trusted = list(
            session.scalars(select(TrustEntry).where(TrustEntry.event_id == eid, TrustEntry.active.is_(True)))
        )
        drivers = _drivers(session, eid, {t.subject_index for t in trusted})
        for trust in trusted:
            subjects = {trust.subject_index} | drivers.get(trust.subject_index, set())
            newer = session.scalars(
                _active_watch(eid, now).where(
                    WatchEntry.subject_index.in_(subjects), changed > trust.created_at
                )
            ).first()
            if newer is not None:
                trust.active = False
                trust.ended_at = now
                own = newer.subject_index == trust.subject_index
                trust.ended_reason = "watchlist_changed" if own else "driver_watched"
        session.flush()
        hotstate.after_commit_replace_watched(session, eid, *watch_flags(session, eid, now))


def _drivers(session: Session, event_id: int, subjects: set[str]) -> dict[str, set[str]]:
    """Vehicle subject (plate index) -> ID indexes of its drivers' applications."""
    if not subjects:
        return {}
    rows = session.execute(
        select(Application.subject_index, Application.id_index).where(
            Application.event_id == event_id,
            Application.kind == ApplicationKind.vehicle,
            Application.subject_index.in_(subjects),
        )
    )
    out: dict[str, set[str]] = {}
    for subject, id_index in rows:
        out.setdefault(subject, set()).add(id_index)
    return out


def trust_subject(
    session: Session,
    event_id: int,
    subject: str,
    ring: int,
    *,
    source: str,
    actor_id: int | None,
    now: datetime,
) -> TrustEntry:
    existing = find_trust(session, event_id, subject, ring, now=now)
    if existing is not None:
        return existing
    entry = TrustEntry(
        event_id=event_id,
        subject_index=subject,
        ring=ring,
        valid_until=now + timedelta(days=RULE_SET["trust_days"]),
        source=source,
        created_by_id=actor_id,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


def resolve_alert(
    session: Session, actor: Actor, alert_id: int, *, cleared: bool, note: str, now: datetime | None = None
) -> Alert:
    """Officer decision on an alert. Clearing one about a subject trusts the subject for
    the event and ring (repeat alerts of the same kind are then suppressed)."""
    require_role(actor, "officer")
    now = now or utcnow()
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("预警不存在", code="alert_not_found")
    scope.officer_event(session, actor, alert.event_id)
    if alert.status != AlertStatus.open:
        raise Conflict("预警已处置", code="alert_resolved")
    alert.status = AlertStatus.cleared if cleared else AlertStatus.confirmed
    alert.resolved_by_id, alert.resolved_at, alert.note = actor.person_id, now, note
    if cleared and alert.subject_index and alert.severity != "reject":
        ring = _alert_ring(session, alert)
        trust_subject(
            session,
            alert.event_id,
            alert.subject_index,
            ring,
            source="officer_cleared",
            actor_id=actor.person_id,
            now=now,
        )
        rescreen(session, alert.event_id, now=now)
    _audit(session, actor, "passes.alert." + alert.status.value, "pass_alert", alert.id, {"note": note})
    return alert


def _alert_ring(session: Session, alert: Alert) -> int:
    if alert.application_id:
        return session.get(Application, alert.application_id).ring
    if alert.pass_id:
        return session.get(PassCredential, alert.pass_id).ring
    return 1


def list_alerts(session: Session, actor: Actor, event_id: int, status: str | None) -> list[Alert]:
    """The latest 200 alerts of an event of the officer's jurisdiction, newest first."""
    scope.officer_event(session, actor, event_id)
    stmt = select(Alert).where(Alert.event_id == event_id)
    if status:
        stmt = stmt.where(Alert.status == AlertStatus(status))
    return list(session.scalars(stmt.order_by(Alert.id.desc()).limit(200)))


def _audit(session: Session, actor: Actor, action: str, obj_type: str, obj_id: int, data: dict) -> None:
    session.add(
        AuditEntry(
            actor_id=actor.person_id, action=action, object_type=obj_type, object_id=str(obj_id), data=data
        )
    )
