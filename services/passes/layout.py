"""Officers list and edit an event's zone rings and gates, and edit the event itself.

Each edit validates every field before it changes anything and is audited. Gate
devices hold what they need of these rows (ring, direction, lane, occupancy limit, keys,
time zone) in their gate context: the process that made the change drops its contexts
once it commits, every other process reloads within ``gate.CONTEXT_TTL`` seconds. The
gates' Redis state is per pass and ring, so none of these edits has to touch it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.auth import Actor, require_role
from core.db import after_commit
from core.errors import Conflict, NotFound, ValidationFailed
from models.passes import Event, Gate, GateDirection, PassCredential, Zone
from models.platform import AuditEntry
from services.passes import events, scope


def zones_query(session: Session, actor: Actor, event_id: int) -> Select:
    """The event's rings, for a keyset page (outermost first)."""
    scope.officer_event(session, actor, event_id)
    return select(Zone).where(Zone.event_id == event_id)


def update_zone(session: Session, actor: Actor, event_id: int, ring: int, changes: dict) -> Zone:
    """Rename a ring or change its daily capacities or occupancy limit (None: no limit).
    New limits judge new applications and scans; approved passes stay approved."""
    scope.officer_event(session, actor, event_id)
    zone = session.scalar(select(Zone).where(Zone.event_id == event_id, Zone.ring == ring))
    if zone is None:
        raise NotFound("区域不存在", code="zone_not_found")
    _apply(session, actor, zone, changes, "passes.zone.update", "pass_zone")
    return zone


def gates_query(session: Session, actor: Actor, event_id: int) -> Select:
    """The event's gates, for a keyset page (oldest first)."""
    scope.officer_event(session, actor, event_id)
    return select(Gate).where(Gate.event_id == event_id)


def update_gate(session: Session, actor: Actor, gate_id: int, changes: dict) -> Gate:
    """Change a gate: name, ring, direction, lane, offline use, failing closed, or its
    device (``device_person_id`` None unbinds it; another device must hold the ``gate``
    role and serve no other gate)."""
    require_role(actor, "officer")
    gate = session.get(Gate, gate_id, with_for_update=True)
    if gate is None:
        raise NotFound("闸机不存在", code="gate_not_found")
    event = scope.officer_event(session, actor, gate.event_id)
    if "ring" in changes:
        rings = {z.ring for z in event.zones}
        if changes["ring"] not in rings:
            raise ValidationFailed(fields={"ring": f"区域层级应为 {sorted(rings)} 之一"})
    device = changes.get("device_person_id")
    if device is not None and device != gate.device_person_id:
        events.check_device(session, device)
    if "direction" in changes:
        changes = {**changes, "direction": GateDirection(changes["direction"])}
    _apply(session, actor, gate, changes, "passes.gate.update", "pass_gate")
    return gate


def update_event(session: Session, actor: Actor, event_id: int, changes: dict) -> Event:
    """Change an event's name, period, time zone, jurisdiction or rule overrides
    (``policy``: given keys replace the event's, a None value removes one). The time
    zone is fixed once a pass is issued: passes carry validity and daily windows
    computed in it. Applications already judged keep their outcome."""
    event = scope.officer_event(session, actor, event_id, lock=True)
    changes = dict(changes)
    starts, ends = changes.get("starts_at", event.starts_at), changes.get("ends_at", event.ends_at)
    if ends <= starts:
        raise ValidationFailed(
            fields={"ends_at" if "ends_at" in changes else "starts_at": "结束时间必须晚于开始时间"}
        )
    if changes.get("timezone", event.timezone) != event.timezone:
        events.check_timezone(changes["timezone"])
        if session.scalar(select(PassCredential.id).where(PassCredential.event_id == event.id).limit(1)):
            raise Conflict("活动已签发通行证，不能再修改时区", code="event_has_passes")
    if "policy" in changes:
        merged = {**(event.policy or {}), **changes["policy"]}
        changes["policy"] = {k: v for k, v in merged.items() if v is not None}
        events.check_policy(changes["policy"])
    if "org_unit_id" in changes:
        changes["org_unit_id"] = events.event_unit(session, actor, changes["org_unit_id"])
    _apply(session, actor, event, changes, "passes.event.update", "pass_event")
    return event


def _apply(session: Session, actor: Actor, row, changes: dict, action: str, obj_type: str) -> None:
    """Set the changed attributes, audit them, and have gate contexts reloaded."""
    diff = {k: (getattr(row, k), v) for k, v in changes.items() if getattr(row, k) != v}
    if not diff:
        return
    for name, (_old, new) in diff.items():
        setattr(row, name, new)
    session.add(
        AuditEntry(
            actor_id=actor.person_id, action=action, object_type=obj_type, object_id=str(row.id),
            data={k: {"from": _plain(a), "to": _plain(b)} for k, (a, b) in diff.items()},
        )
    )  # fmt: skip
    session.flush()
    reload_gate_contexts(session)


def reload_gate_contexts(session: Session) -> None:
    """Once the session commits, drop this process's gate contexts (each device reloads
    its own at its next scan; other processes within ``gate.CONTEXT_TTL`` seconds)."""

    def forget() -> None:
        from services.passes import gate

        gate.contexts.clear()

    after_commit(session, forget, key=("passes_gate_contexts",))


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return value.value if hasattr(value, "value") else value
