"""Pass credentials: issue, re-issue (revokes the old token), revoke, revocation list.

The token is the compact Ed25519 token of ``core.signing`` (kind ``KIND_PASS`` for a
person, ``checks.KIND_VEHICLE_PASS`` for a vehicle, so gates tell the lanes apart): object
id = pass id, scope id = event id, zone = ring, validity = the visit window, and a
holder tag — HMAC with the event's gate key over the ID number (visitor) or plate
(vehicle), truncated to 8 bytes — so a gate can cross-check an ID-card read or a plate
camera without the QR carrying personal data. An application with a daily time window
(not the whole day) gets a version-2 token carrying it, so gates enforce it on every
visit day in the event's time zone without a lookup.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import outbox, pii, signing
from core.auth import Actor, require_role
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from models.passes import (
    Application,
    ApplicationKind,
    ApplicationStatus,
    Event,
    PassCredential,
    PassStatus,
    Revocation,
)
from models.platform import AuditEntry
from services import keys
from services.passes import hotstate, scope
from services.passes.checks import KIND_PERSON_PASS, KIND_VEHICLE_PASS, plate_tag
from services.passes.events import gate_for_device, gate_key, key_scope
from services.passes.verification import visit_end, visit_start


def holder_tag_for(key: bytes, app: Application) -> bytes:
    if app.kind == ApplicationKind.vehicle:
        return plate_tag(key, app.plate or "")
    return signing.holder_tag(key, app.id_number)


def daily_window(app: Application) -> tuple[int, int]:
    """The application's daily time window as minutes of the local day (end exclusive)."""

    def minutes(hhmm: str) -> int:
        hh, mm = hhmm.split(":")
        return int(hh) * 60 + int(mm)

    return minutes(app.time_from or "00:00"), minutes(app.time_to or "24:00")


def holder_summary(app: Application) -> str:
    """What the guard sees: masked name, kind, masked plate."""
    if app.kind == ApplicationKind.vehicle:
        return f"车辆 {pii.mask_plate(app.plate or '')}（驾驶员 {pii.mask_name(app.name)}）"
    return f"人员 {pii.mask_name(app.name)}"


def issue(
    session: Session,
    app: Application,
    *,
    kek: bytes,
    now: datetime | None = None,
    replaces: PassCredential | None = None,
) -> PassCredential:
    """Sign and store a pass for an approved application; queue the card render (the
    render job then notifies the holder). Side effects: a pass row, outbox rows."""
    now = now or utcnow()
    event = session.get(Event, app.event_id)
    ring_keys = keys.signing_ring(session, key_scope(event.id), kek)
    start, end = visit_start(event, app), visit_end(event, app)
    credential = PassCredential(
        event_id=event.id,
        application_id=app.id,
        ring=app.ring,
        kid="",
        token="",
        valid_from=start,
        valid_to=end,
        status=PassStatus.active,
        replaces_id=replaces.id if replaces else None,
        issued_at=now,
    )
    session.add(credential)
    session.flush()
    credential.token = signing.encode_token(
        kind=KIND_VEHICLE_PASS if app.kind == ApplicationKind.vehicle else KIND_PERSON_PASS,
        object_id=credential.id,
        scope_id=event.id,
        zone=app.ring,
        not_before=int(start.timestamp()),
        not_after=int(end.timestamp()),
        ring=ring_keys,
        holder_tag=holder_tag_for(gate_key(event, kek), app),
        daily_window=daily_window(app),
    )
    credential.kid = ring_keys.active.kid
    session.flush()
    hotstate.after_commit_info(session, event.id, credential.id, holder_summary(app))
    outbox.add(
        session, "passes.render_card", {"pass_id": credential.id}, dedup_key=f"pass-card:{credential.id}"
    )
    return credential


def active_pass(session: Session, application_id: int) -> PassCredential | None:
    return session.scalars(
        select(PassCredential).where(
            PassCredential.application_id == application_id, PassCredential.status == PassStatus.active
        )
    ).first()


def revoke(session: Session, credential: PassCredential, *, reason: str, now: datetime | None = None) -> int:
    """Revoke a pass; returns the event's new revocation version (monotonic: an atomic
    increment on the event row). Revoking a revoked pass is a no-op returning 0."""
    if credential.status == PassStatus.revoked:
        return 0
    now = now or utcnow()
    credential.status = PassStatus.revoked
    credential.revoked_at = now
    version = session.execute(
        update(Event)
        .where(Event.id == credential.event_id)
        .values(revocation_version=Event.revocation_version + 1)
        .returning(Event.revocation_version)
    ).scalar_one()
    session.add(
        Revocation(
            event_id=credential.event_id,
            pass_id=credential.id,
            version=version,
            reason=reason,
            created_at=now,
        )
    )
    session.flush()
    hotstate.after_commit_revoked(session, credential.event_id, credential.id, version)
    return version


def revoke_for_application(
    session: Session, app: Application, *, reason: str, now: datetime | None = None
) -> None:
    credential = active_pass(session, app.id)
    if credential is not None:
        revoke(session, credential, reason=reason, now=now)
        outbox.add(
            session,
            "passes.notify_holder",
            {"pass_id": credential.id, "event": "revoked"},
            dedup_key=f"pass-notify:{credential.id}:revoked",
        )


def revoke_by_officer(
    session: Session, actor: Actor, pass_id: int, reason: str, *, now: datetime | None = None
) -> PassCredential:
    """Revoke a pass of an event of the officer's jurisdiction (audited; the holder is
    told after commit)."""
    require_role(actor, "officer")
    credential = session.get(PassCredential, pass_id)
    if credential is None:
        raise NotFound("通行证不存在", code="pass_not_found")
    scope.officer_event(session, actor, credential.event_id)
    if credential.status == PassStatus.revoked:
        raise Conflict("通行证已作废", code="pass_revoked")
    revoke(session, credential, reason="officer", now=now)
    session.add(
        AuditEntry(
            actor_id=actor.person_id,
            action="passes.pass.revoke",
            object_type="pass",
            object_id=str(pass_id),
            data={"reason": reason},
        )
    )
    outbox.add(
        session,
        "passes.notify_holder",
        {"pass_id": pass_id, "event": "revoked"},
        dedup_key=f"pass-notify:{pass_id}:revoked",
    )
    return credential


def reissue(
    session: Session, actor: Actor, pass_id: int, *, ring: int | None, kek: bytes, now: datetime | None = None
) -> PassCredential:
    """Replace a pass (e.g. the ring changed, or the holder lost it): the old token is
    revoked in the same transaction, the new one rendered and sent. The holder's own
    pass, or any pass of an event of the officer's jurisdiction; another ring is an
    officer's decision."""
    credential = session.get(PassCredential, pass_id)
    if credential is None:
        raise NotFound("通行证不存在", code="pass_not_found")
    app = session.get(Application, credential.application_id)
    is_officer = actor.has_any_role(("officer", "admin"))
    if app.applicant_id != actor.person_id and not is_officer:
        raise NotFound("通行证不存在", code="pass_not_found")
    if app.applicant_id != actor.person_id or (ring is not None and ring != app.ring):
        scope.officer_event(session, actor, app.event_id)
    if credential.status != PassStatus.active or app.status != ApplicationStatus.approved:
        raise Conflict("只有有效的通行证可以补发", code="pass_not_active")
    if ring is not None and ring != app.ring:
        event = session.get(Event, app.event_id)
        if ring not in {z.ring for z in event.zones}:
            raise ValidationFailed(fields={"ring": "区域层级不存在"})
        app.ring = ring
    revoke(session, credential, reason="reissued", now=now)
    new = issue(session, app, kek=kek, now=now, replaces=credential)
    session.add(
        AuditEntry(
            actor_id=actor.person_id, action="passes.pass.reissue", object_type="pass", object_id=str(new.id),
            data={"replaces": credential.id, "ring": app.ring},
        )
    )  # fmt: skip
    return new


def revocations_for(session: Session, actor: Actor, event_id: int, since_version: int = 0) -> dict:
    """:func:`revocation_list` for an officer whose jurisdiction covers the event, or
    for the device of one of the event's gates (another event's: 403
    ``gate_not_in_event``; a device serving no gate: 404 ``gate_not_bound``)."""
    if actor.has_any_role(("officer", "admin")):
        scope.officer_event(session, actor, event_id)
    else:
        require_role(actor, "gate")
        if gate_for_device(session, actor.person_id).event_id != event_id:
            raise Forbidden("本闸机不属于该活动", code="gate_not_in_event")
    return revocation_list(session, event_id, since_version)


def revocation_list(session: Session, event_id: int, since_version: int = 0) -> dict:
    """Revoked pass ids with version > ``since_version`` (a delta), and the current version."""
    event = session.get(Event, event_id)
    if event is None:
        raise NotFound("活动不存在", code="event_not_found")
    rows = session.execute(
        select(Revocation.pass_id, Revocation.version)
        .where(Revocation.event_id == event_id, Revocation.version > since_version)
        .order_by(Revocation.version)
    ).all()
    return {
        "event_id": event_id,
        "version": event.revocation_version,
        "since": since_version,
        "pass_ids": [r.pass_id for r in rows],
    }
