"""Citizens apply for visitor and vehicle passes; list, read and cancel their own.

Creation validates every field (typed errors, nothing written on failure), refuses a
duplicate for the same person/vehicle with overlapping dates (pointing at the existing
application), runs the automatic verification and issues the pass when approved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import pii
from core.auth import Actor
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.validators import InvalidValue, normalize_mobile, normalize_plate, normalize_resident_id
from models.passes import Application, ApplicationKind, ApplicationStatus, Event, PassGroup
from services.passes import issuance, scope, verification
from services.passes.rules import RULE_SET

_TIME = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")
OPEN_STATUSES = (ApplicationStatus.approved, ApplicationStatus.manual_review)


@dataclass
class PersonInput:
    name: str
    id_number: str
    mobile: str


@dataclass
class ApplicationInput:
    """A visitor (``person``) or a vehicle (``plate`` set; ``person`` is the driver)."""

    person: PersonInput
    purpose: str
    host_unit: str
    visit_from: date
    visit_to: date
    ring: int
    time_from: str = "00:00"
    time_to: str = "24:00"
    plate: str | None = None
    plate_colour: str | None = None
    vehicle_type: str | None = None
    driving_licence: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def kind(self) -> ApplicationKind:
        return ApplicationKind.vehicle if self.plate is not None else ApplicationKind.visitor


def _check(value: str, fn, field_name: str, *args):
    try:
        return fn(value, *args)
    except InvalidValue as exc:
        raise ValidationFailed(exc.message, code=exc.code, fields={field_name: exc.message}) from None


def _validate(event: Event, data: ApplicationInput, prefix: str = "") -> dict:
    """Normalised column values; ValidationFailed with the offending field."""
    p = data.person
    values = {
        "name": p.name.strip(),
        "id_number": _check(p.id_number, normalize_resident_id, prefix + "id_number"),
        "mobile": _check(p.mobile, normalize_mobile, prefix + "mobile"),
    }
    if not values["name"]:
        raise ValidationFailed(fields={prefix + "name": "不能为空"})
    if data.kind == ApplicationKind.vehicle:
        colour = data.plate_colour or ""
        values["plate"] = _check(data.plate or "", normalize_plate, prefix + "plate", colour)
        values["plate_colour"] = colour
        if not data.driving_licence:
            raise ValidationFailed(fields={prefix + "driving_licence": "车辆申请需填写驾驶证号"})
    if data.visit_to < data.visit_from:
        raise ValidationFailed(fields={prefix + "visit_to": "结束日期不能早于开始日期"})
    if (data.visit_to - data.visit_from).days >= RULE_SET["max_visit_days"]:
        raise ValidationFailed(fields={prefix + "visit_to": f"单次申请最长 {RULE_SET['max_visit_days']} 天"})
    if not 1900 < data.visit_from.year < 9999 or data.visit_to.year >= 9999:
        raise ValidationFailed(fields={prefix + "visit_from": "日期超出合理范围"})
    for name in ("time_from", "time_to"):
        if not _TIME.fullmatch(getattr(data, name)):
            raise ValidationFailed(fields={prefix + name: "时间格式应为 HH:MM"})
    if data.time_to <= data.time_from:
        raise ValidationFailed(fields={prefix + "time_to": "结束时间必须晚于开始时间"})
    rings = {z.ring for z in event.zones}
    if data.ring not in rings:
        raise ValidationFailed(fields={prefix + "ring": f"区域层级应为 {sorted(rings)} 之一"})
    return values


def _subject_index(kind: ApplicationKind, values: dict) -> str:
    if kind == ApplicationKind.vehicle:
        return pii.index("plate", values["plate"])
    return pii.index("resident_id", values["id_number"])


def find_duplicate(
    session: Session,
    event_id: int,
    subject_index: str,
    visit_from: date,
    visit_to: date,
    exclude: int | None = None,
) -> Application | None:
    stmt = select(Application).where(
        Application.event_id == event_id,
        Application.subject_index == subject_index,
        Application.status.in_(OPEN_STATUSES),
        Application.visit_from <= visit_to,
        Application.visit_to >= visit_from,
    )
    if exclude is not None:
        stmt = stmt.where(Application.id != exclude)
    return session.scalars(stmt.order_by(Application.id).limit(1)).first()


def _duplicate_error(existing: Application, actor: Actor, field: str) -> Conflict:
    """The refusal points at the existing application only when it is the caller's own:
    its id and status would otherwise tell anyone who knows an ID number or a plate
    about another person's application."""
    if existing.applicant_id == actor.person_id:
        return Conflict(
            f"您已为该人员/车辆在重叠日期提交过申请（编号 {existing.id}），请勿重复申请",
            code="duplicate_application",
            details={"existing_application_id": existing.id, "status": existing.status.value},
        )
    return Conflict(
        "该人员/车辆在所选日期不能重复申请，如有疑问请联系主办方",
        code="duplicate_application",
        fields={field: "所选日期不能重复申请"},
    )


def _build(
    event: Event, actor: Actor, data: ApplicationInput, values: dict, group_id: int | None
) -> Application:
    kind = data.kind
    return Application(
        event_id=event.id,
        applicant_id=actor.person_id,
        group_id=group_id,
        kind=kind,
        status=ApplicationStatus.manual_review,
        ring=data.ring,
        name=values["name"],
        id_number=values["id_number"],
        id_index=pii.index("resident_id", values["id_number"]),
        birth_date=date(
            int(values["id_number"][6:10]), int(values["id_number"][10:12]), int(values["id_number"][12:14])
        ),
        mobile=values["mobile"],
        mobile_index=pii.index("mobile", values["mobile"]),
        plate=values.get("plate"),
        plate_colour=values.get("plate_colour"),
        vehicle_type=data.vehicle_type,
        driving_licence=data.driving_licence,
        subject_index=_subject_index(kind, values),
        purpose=data.purpose,
        host_unit=data.host_unit,
        visit_from=data.visit_from,
        visit_to=data.visit_to,
        time_from=data.time_from,
        time_to=data.time_to,
        rule_set_version=RULE_SET["version"],
    )


def _lock_event(session: Session, event_id: int) -> Event:
    # Serialises applications of one event (duplicate and capacity checks stay exact).
    event = session.get(Event, event_id, with_for_update=True)
    if event is None:
        raise NotFound("活动不存在", code="event_not_found")
    return event


def create(
    session: Session,
    actor: Actor,
    event_id: int,
    data: ApplicationInput,
    *,
    kek: bytes,
    now: datetime | None = None,
) -> Application:
    """Validate, refuse duplicates, verify automatically, issue the pass if approved.

    Side effects: the application, its rule results, alerts, and (approved) a pass
    with its render/notify outbox rows. Idempotency comes from the edge's key.
    """
    now = now or utcnow()
    event = _lock_event(session, event_id)
    values = _validate(event, data)
    subject = _subject_index(data.kind, values)
    existing = find_duplicate(session, event.id, subject, data.visit_from, data.visit_to)
    if existing is not None:
        raise _duplicate_error(
            existing, actor, "plate" if data.kind == ApplicationKind.vehicle else "id_number"
        )
    app = _build(event, actor, data, values, None)
    session.add(app)
    session.flush()
    _decide(session, event, app, kek=kek, now=now)
    return app


def create_group(
    session: Session,
    actor: Actor,
    event_id: int,
    group_name: str,
    members: list[ApplicationInput],
    *,
    kek: bytes,
    now: datetime | None = None,
) -> tuple[PassGroup, list[Application]]:
    """A leader applies for every member; each member is verified on their own and gets
    their own pass (members arrive independently). All-or-nothing on bad input."""
    now = now or utcnow()
    event = _lock_event(session, event_id)
    if not members or len(members) > RULE_SET["max_group_size"]:
        raise ValidationFailed(fields={"members": f"成员人数应为 1 到 {RULE_SET['max_group_size']} 人"})
    validated, seen = [], set()
    for i, data in enumerate(members):
        values = _validate(event, data, prefix=f"members.{i}.")
        subject = _subject_index(data.kind, values)
        if subject in seen:
            raise ValidationFailed(fields={f"members.{i}.id_number": "与其他成员重复"})
        seen.add(subject)
        existing = find_duplicate(session, event.id, subject, data.visit_from, data.visit_to)
        if existing is not None:
            raise _duplicate_error(existing, actor, f"members.{i}.id_number")
        validated.append((data, values))
    group = PassGroup(event_id=event.id, applicant_id=actor.person_id, name=group_name)
    session.add(group)
    session.flush()
    apps = []
    for data, values in validated:
        app = _build(event, actor, data, values, group.id)
        session.add(app)
        session.flush()
        _decide(session, event, app, kek=kek, now=now)
        apps.append(app)
    return group, apps


def _decide(session: Session, event: Event, app: Application, *, kek: bytes, now: datetime) -> None:
    app.status = verification.run(session, event, app, now=now)
    if app.status == ApplicationStatus.approved:
        issuance.issue(session, app, kek=kek, now=now)


def get_own(session: Session, actor: Actor, application_id: int) -> Application:
    """The actor's own application, or any of an event of the officer's jurisdiction
    (``scope.officer_event``: another district's is 403 ``out_of_jurisdiction``)."""
    app = session.get(Application, application_id)
    if app is None:
        raise NotFound("申请不存在", code="application_not_found")
    if app.applicant_id != actor.person_id:
        if not actor.has_any_role(("officer", "admin")):
            # Same answer as a missing row: ids of other citizens' applications leak nothing.
            raise NotFound("申请不存在", code="application_not_found")
        scope.officer_event(session, actor, app.event_id)
    return app


def list_own(session: Session, actor: Actor, *, after_id: int | None, limit: int) -> list[Application]:
    stmt = select(Application).where(Application.applicant_id == actor.person_id)
    if after_id is not None:
        stmt = stmt.where(Application.id < after_id)
    return list(session.scalars(stmt.order_by(Application.id.desc()).limit(limit)))


def cancel(
    session: Session, actor: Actor, application_id: int, *, now: datetime | None = None
) -> Application:
    """Cancel one's own application; its active pass is revoked. Cancelling twice is a no-op."""
    app = get_own(session, actor, application_id)
    if app.applicant_id != actor.person_id and not actor.has_any_role(("officer", "admin")):
        raise Forbidden()
    if app.status == ApplicationStatus.cancelled:
        return app
    if app.status == ApplicationStatus.rejected:
        raise Conflict("申请已被驳回，无需取消", code="application_rejected")
    app.status = ApplicationStatus.cancelled
    issuance.revoke_for_application(session, app, reason="cancelled", now=now)
    session.flush()
    return app
