"""Vehicles and credentials: registration, expiry reminders and blocking at expiry.

Reminders are outbox rows with dedup keys ``expiry:{credential}:{days}``, so a second
scheduler run or a retry never repeats one. The due queries select by ``valid_until``
on ``ix_permit_credentials_status_valid_until``: their cost follows what is due.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core import outbox
from core.auth import Actor
from core.errors import ValidationFailed
from core.validators import InvalidValue, normalize_plate
from models.permits.applications import Permit, PermitCredential, PermitStatus
from models.permits.credentials import Credential, CredentialKind, CredentialStatus
from models.permits.enterprises import Vehicle
from services.permits import rules
from services.permits.enterprises import is_member, require_member
from services.permits.instant_check import CRED_NAMES

VEHICLE_KINDS = (CredentialKind.vehicle_registration, CredentialKind.road_transport)
PERSON_KINDS = (
    CredentialKind.driving_licence,
    CredentialKind.driver_qualification,
    CredentialKind.escort_qualification,
)
NOTIFY_JOB = "permits.notify"


def add_vehicle(session: Session, actor: Actor, enterprise_id: int, plate: str, colour: str) -> Vehicle:
    """Register a vehicle of the enterprise (manager); the plate is validated with its colour."""
    require_member(session, actor, enterprise_id, "manager")
    try:
        plate = normalize_plate(plate, colour)
    except InvalidValue as exc:
        raise ValidationFailed(exc.message, code=exc.code, fields={"plate": exc.message}) from None
    taken = select(Vehicle.id).where(Vehicle.plate == plate, Vehicle.plate_colour == colour)
    if session.scalar(taken) is not None:
        raise ValidationFailed("该车辆已登记", code="plate_taken", fields={"plate": "该车辆已登记"})
    vehicle = Vehicle(enterprise_id=enterprise_id, plate=plate, plate_colour=colour)
    session.add(vehicle)
    session.flush()
    return vehicle


def _not_owned(field: str) -> ValidationFailed:
    msg = "证照所属车辆或人员不属于本企业"
    return ValidationFailed(msg, code="credential_not_owned", fields={field: msg})


def add_credential(
    session: Session,
    actor: Actor,
    enterprise_id: int,
    *,
    kind: str,
    number: str,
    valid_until: date,
    valid_from: date | None = None,
    vehicle_id: int | None = None,
    person_id: int | None = None,
    category: int | None = None,
    scope: str = "",
) -> Credential:
    """Record a credential of the enterprise, its vehicle or its member (manager only)."""
    require_member(session, actor, enterprise_id, "manager")
    if kind not in CredentialKind.__members__:
        raise ValidationFailed(code="invalid_credential_kind", fields={"kind": "证照类型无效"})
    ckind = CredentialKind(kind)
    plate = None
    if ckind in VEHICLE_KINDS:
        vehicle = session.get(Vehicle, vehicle_id) if vehicle_id else None
        if vehicle is None or vehicle.enterprise_id != enterprise_id:
            raise _not_owned("vehicle_id")
        plate = vehicle.plate
    elif ckind in PERSON_KINDS:
        if person_id is None or not any(
            is_member(session, enterprise_id, person_id, r)
            for r in ("driver", "manager", "warehouse", "sales")
        ):
            raise _not_owned("person_id")
    elif category not in (1, 2, 3):
        raise ValidationFailed(code="invalid_category", fields={"category": "类别应为1、2或3"})
    cred = Credential(
        enterprise_id=enterprise_id,
        kind=ckind,
        number=number,
        vehicle_id=vehicle_id if plate else None,
        person_id=person_id if ckind in PERSON_KINDS else None,
        plate=plate,
        category=category if ckind == CredentialKind.enterprise_licence else None,
        scope=scope,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    session.add(cred)
    session.flush()
    return cred


def due_credentials(due: date) -> Select:
    """Active credentials expiring on ``due``; an index range scan on (status, valid_until),
    so the daily sweep costs what is due, not the size of the table."""
    return select(Credential.id, Credential.enterprise_id, Credential.kind, Credential.number).where(
        Credential.status == CredentialStatus.active, Credential.valid_until == due
    )


def queue_reminders(session: Session, today: date) -> int:
    """Add reminder rows for credentials expiring in 30/7/1 days; returns rows added.

    Idempotent per credential and offset via the dedup key.
    """
    added = 0
    for days in rules.REMINDER_DAYS:
        due = today + timedelta(days=days)
        rows = session.execute(due_credentials(due))
        for cid, ent_id, kind, number in rows:
            text = f"{CRED_NAMES[kind]}（{number}）将于 {days} 天后（{due}）到期，请及时办理"
            payload = {"enterprise_id": ent_id, "credential_id": cid, "days": days, "text": text}
            if outbox.add(session, NOTIFY_JOB, payload, dedup_key=f"expiry:{cid}:{days}") is not None:
                added += 1
    return added


def apply_expiry(session: Session, today: date) -> dict[str, int]:
    """Mark credentials past ``valid_until`` expired and flag the valid permits relying on them.

    Side effects: credential status, permit status ``flagged`` with a reason, a
    notification per credential (dedup ``expired:{credential}``). Idempotent.
    """
    creds = list(
        session.scalars(
            select(Credential).where(
                Credential.status == CredentialStatus.active, Credential.valid_until < today
            )
        )
    )
    flagged = 0
    for cred in creds:
        cred.status = CredentialStatus.expired
        permits = session.scalars(
            select(Permit)
            .join(PermitCredential, PermitCredential.permit_id == Permit.id)
            .where(PermitCredential.credential_id == cred.id, Permit.status == PermitStatus.valid)
        )
        for permit in permits:
            permit.status, permit.flag_reason = PermitStatus.flagged, f"所依赖证照 {cred.number} 已过期"
            flagged += 1
        text = f"证照 {cred.number} 已于 {cred.valid_until} 到期，相关新申请将被拦截"
        outbox.add(
            session,
            NOTIFY_JOB,
            {"enterprise_id": cred.enterprise_id, "text": text},
            dedup_key=f"expired:{cred.id}",
        )
    session.flush()
    return {"expired": len(creds), "permits_flagged": flagged}
