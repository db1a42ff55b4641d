"""Events, their zone rings and gates; the per-event gate key (encrypted at rest).

Officers manage these; every function flushes, never commits.
"""

from __future__ import annotations

import functools
import secrets
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Actor, require_jurisdiction, require_role
from core.errors import Conflict, NotFound, ValidationFailed
from core.pii import FieldCipher
from models.identity import OrgUnit, Person, Role, RoleGrant
from models.passes import Event, Gate, GateDirection, Zone
from services import keys
from services.passes import scope
from services.passes.rules import EVENT_POLICY_BOUNDS, EVENT_POLICY_KEYS, RULE_SET


def key_scope(event_id: int) -> str:
    return f"event:{event_id}"


def _cipher(kek: bytes) -> FieldCipher:
    return FieldCipher({1: kek}, 1)


def gate_key(event: Event, kek: bytes) -> bytes:
    """The event's HMAC key for holder tags (decrypted; never logged or returned to citizens)."""
    return bytes.fromhex(_cipher(kek).decrypt(event.gate_key_enc, f"gate-key:{event.id}".encode()))


def get_event(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise NotFound("活动不存在", code="event_not_found")
    return event


@dataclass
class ZoneSpec:
    ring: int
    name: str
    daily_capacity_visitor: int | None = None
    daily_capacity_vehicle: int | None = None
    max_inside: int | None = None


def create_event(
    session: Session,
    actor: Actor,
    *,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    zones: list[ZoneSpec],
    kek: bytes,
    org_unit_id: int | None = None,
    timezone: str = "Asia/Shanghai",
    policy: dict | None = None,
) -> Event:
    """Create an event with its nested rings (1..n, 1 outermost), a gate key and a
    signing key in scope ``event:<id>``. ``timezone`` (IANA) is where its local days
    are counted; ``org_unit_id`` its jurisdiction (officers covering it get its
    alerts), by default the creating officer's own unit. Not idempotent by itself (the
    edge's Idempotency-Key makes the POST so)."""
    require_role(actor, Role.officer)
    if ends_at <= starts_at:
        raise ValidationFailed(fields={"ends_at": "结束时间必须晚于开始时间"})
    check_timezone(timezone)
    check_policy(policy or {})
    org_unit_id = event_unit(session, actor, org_unit_id)
    rings = sorted(z.ring for z in zones)
    if not zones or rings != list(range(1, len(zones) + 1)):
        raise ValidationFailed(fields={"zones": "区域层级应从 1（最外层）开始连续编号"})
    event = Event(
        name=name,
        starts_at=starts_at,
        ends_at=ends_at,
        timezone=timezone,
        org_unit_id=org_unit_id,
        gate_key_enc=b"",
        created_by_id=actor.person_id,
        policy=policy or {},
    )
    session.add(event)
    session.flush()
    event.gate_key_enc = _cipher(kek).encrypt(secrets.token_bytes(32).hex(), f"gate-key:{event.id}".encode())
    for z in zones:
        session.add(Zone(event_id=event.id, **z.__dict__))
    keys.signing_ring(session, key_scope(event.id), kek)
    session.flush()
    return event


@functools.cache
def _zone_names() -> frozenset[str]:
    # "localtime"/"posixrules" are files of the system database, not time zones.
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "posixrules"}


def check_timezone(name: str) -> str:
    """An IANA time zone name the server knows (e.g. ``Asia/Shanghai``)."""
    if name not in _zone_names():
        raise ValidationFailed(
            "活动时区无效",
            code="invalid_timezone",
            fields={"timezone": "应为 IANA 时区名称，如 Asia/Shanghai"},
        )
    return name


def event_unit(session: Session, actor: Actor, org_unit_id: int | None) -> int | None:
    """The event's jurisdiction: a unit the officer governs, or by default the unit of
    the officer's own grant (None for officers without one, who govern everything)."""
    if org_unit_id is None:
        units = {g.org_unit_id for g in actor.grants if g.role == Role.officer}
        return units.pop() if len(units) == 1 else None
    unit = session.get(OrgUnit, org_unit_id)
    if unit is None:
        raise ValidationFailed("组织不存在", code="org_unit_not_found", fields={"org_unit_id": "组织不存在"})
    require_jurisdiction(actor, unit.path, Role.officer)
    return unit.id


def check_policy(policy: dict) -> None:
    """Each override is a known key with an integer inside its range (see
    ``rules.EVENT_POLICY_BOUNDS``), and the age range is not empty."""
    for name, value in policy.items():
        field = f"policy.{name}"
        if name not in EVENT_POLICY_KEYS:
            raise ValidationFailed(fields={field: "不支持的规则参数"})
        low, high = EVENT_POLICY_BOUNDS[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValidationFailed(fields={field: f"应为 {low} 到 {high} 之间的整数"})
    merged = {**RULE_SET, **policy}
    if merged["min_age"] > merged["max_age"]:
        raise ValidationFailed(fields={"policy.max_age": "最大年龄不能小于最小年龄"})


def add_gate(
    session: Session,
    actor: Actor,
    event_id: int,
    *,
    name: str,
    ring: int,
    direction: str,
    vehicle: bool = False,
    offline_capable: bool = True,
    fail_closed: bool | None = None,
    device_person_id: int | None = None,
) -> Gate:
    """A gate on the outer boundary of ``ring``. Core-ring gates fail closed offline by
    default. ``device_person_id`` must hold the ``gate`` role and serve no other gate."""
    event = scope.officer_event(session, actor, event_id)
    max_ring = max((z.ring for z in event.zones), default=0)
    if not 1 <= ring <= max_ring:
        raise ValidationFailed(fields={"ring": f"区域层级应在 1 到 {max_ring} 之间"})
    if device_person_id is not None:
        check_device(session, device_person_id)
    gate = Gate(
        event_id=event.id,
        name=name,
        ring=ring,
        direction=GateDirection(direction),
        vehicle=vehicle,
        offline_capable=offline_capable,
        fail_closed=(ring == max_ring) if fail_closed is None else fail_closed,
        device_person_id=device_person_id,
    )
    session.add(gate)
    session.flush()
    return gate


def check_device(session: Session, person_id: int) -> None:
    """A device account for a gate: exists, holds the ``gate`` role, serves no gate yet."""
    if session.get(Person, person_id) is None:
        raise ValidationFailed(fields={"device_person_id": "账号不存在"})
    grant = session.scalar(
        select(RoleGrant.id).where(RoleGrant.person_id == person_id, RoleGrant.role == Role.gate)
    )
    if grant is None:
        raise ValidationFailed(fields={"device_person_id": "该账号不是闸机设备账号"})
    if session.scalar(select(Gate.id).where(Gate.device_person_id == person_id)) is not None:
        raise Conflict("该设备账号已绑定其他闸机", code="device_in_use")


def gate_for_device(session: Session, person_id: int) -> Gate:
    gate = session.scalar(select(Gate).where(Gate.device_person_id == person_id))
    if gate is None:
        raise NotFound("该设备账号未绑定闸机", code="gate_not_bound")
    return gate


def rotate_key(session: Session, actor: Actor, event_id: int, kek: bytes) -> str:
    """New signing key for the event; passes signed with the old key still verify."""
    scope.officer_event(session, actor, event_id)
    return keys.rotate(session, key_scope(event_id), kek)


def list_events(session: Session, actor: Actor) -> list[Event]:
    """The events the officer's jurisdiction covers, latest start first."""
    require_role(actor, Role.officer)
    stmt = select(Event).where(scope.visible_events(actor)).order_by(Event.starts_at.desc(), Event.id.desc())
    return list(session.scalars(stmt))
