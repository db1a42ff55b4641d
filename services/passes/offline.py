"""Offline gates: the bundle a gate downloads, and the upload of offline scans.

Uploaded scans are facts ("already happened"): accepted ones become passages
(``offline=True``, idempotent on the nonce), refused ones go to the refused-scan log.
The server then reports conflicts (the same pass entering one ring at two gates with
no exit between) and alerts on revoked passes that got through. After the commit the
accepted scans update the online gates' inside/outside state in Redis (each only if
newer than the last scan that set it), so an online gate after an offline one sees
who is inside.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import Conflict, ValidationFailed
from models.passes import Event, Gate, Passage, Revocation, ScanRefusal, Zone
from services import keys
from services.passes import checks, hotstate, issuance, lists
from services.passes.events import gate_for_device, gate_key, key_scope


def gate_key_material(session: Session, person_id: int, *, kek: bytes) -> dict:
    """The per-event gate key a device's ID-card reader (or plate camera) needs to
    compute holder tags, for any gate bound to the device, online-only ones included:
    the same key and the same authorization (a gate device account bound to a gate of
    the event) as the offline bundle. A person's tag is ``core.signing.holder_tag``, a
    vehicle's ``checks.plate_tag``. Read only."""
    gate = gate_for_device(session, person_id)
    event = session.get(Event, gate.event_id)
    return {
        "event_id": event.id,
        "gate_id": gate.id,
        "gate_key": base64.b64encode(gate_key(event, kek)).decode(),
    }


def build_bundle(
    session: Session, person_id: int, *, kek: bytes, since: int | None = None, now: datetime | None = None
) -> dict:
    """The device's bundle; with ``since`` the revocation part is a delta."""
    now = now or utcnow()
    gate = gate_for_device(session, person_id)
    if not gate.offline_capable:
        raise Conflict("该闸机未开通离线核验", code="gate_not_offline_capable")
    event = session.get(Event, gate.event_id)
    zones = list(session.scalars(select(Zone).where(Zone.event_id == event.id).order_by(Zone.ring)))
    gates = list(session.scalars(select(Gate).where(Gate.event_id == event.id).order_by(Gate.id)))
    return {
        "format": 1,
        "generated_at": now.isoformat(),
        "event": {
            "id": event.id,
            "name": event.name,
            "timezone": event.timezone,
            "max_ring": max(z.ring for z in zones),
            "zones": [{"ring": z.ring, "name": z.name} for z in zones],
        },
        "gate": _gate_dict(gate),
        "gates": [_gate_dict(g) for g in gates],
        "keys": keys.public_key_set(session, key_scope(event.id)),
        "gate_key": base64.b64encode(gate_key(event, kek)).decode(),
        "revocations": issuance.revocation_list(session, event.id, since or 0),
        "watched_pass_ids": lists.watched_pass_ids(session, event.id, now),
    }


def _gate_dict(g: Gate) -> dict:
    return {
        "id": g.id,
        "name": g.name,
        "ring": g.ring,
        "direction": g.direction.value,
        "vehicle": g.vehicle,
        "fail_closed": g.fail_closed,
    }


@dataclass
class OfflineScan:
    nonce: str
    qr: str
    direction: str
    scanned_at: datetime
    result: str
    reason: str | None = None


def _insert_one(session: Session, model, row: dict) -> bool:
    dialect = session.get_bind().dialect.name
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(model.__table__)
    stmt = ins.values(**row).on_conflict_do_nothing(index_elements=["nonce"]).returning(model.__table__.c.id)
    return session.execute(stmt).scalar() is not None


def upload(
    session: Session, person_id: int, scans: list[OfflineScan], *, kek: bytes, now: datetime | None = None
) -> dict:
    """Record a batch of offline scans; returns the report. Idempotent per nonce: a
    re-upload records nothing twice and raises no alert twice."""
    from services.passes.gate import load_context

    now = now or utcnow()
    gate = gate_for_device(session, person_id)
    ctx = load_context(session, gate, kek)
    report = {"accepted": 0, "duplicates": 0, "refused": 0, "conflicts": [], "revoked_passed": []}
    touched: set[int] = set()
    watch_refused: set[int] = set()  # passes refused offline with ``watchlist``
    moves: list[tuple[int, int, str, int]] = []  # (pass, ring, direction, ms) for the gate state
    for scan in scans:
        if scan.direction not in ("in", "out") or scan.scanned_at.tzinfo is None:
            raise ValidationFailed(fields={"scans": "方向应为 in/out，时间需带时区"})
        try:
            pass_id = checks.verify_pass_token(scan.qr, ctx.verifiers.get, ctx.event_id).object_id
            server_reason = None
        except checks.Refusal as exc:
            pass_id, server_reason = None, exc.reason
        base = {
            "nonce": scan.nonce,
            "event_id": gate.event_id,
            "gate_id": gate.id,
            "direction": scan.direction,
            "offline": True,
            "scanned_at": scan.scanned_at,
            "recorded_at": now,
        }
        if scan.result == "ok" and pass_id is not None:
            # Re-uploads re-apply too (a no-op unless a lost publication left the state stale).
            moves.append((pass_id, gate.ring, scan.direction, int(scan.scanned_at.timestamp() * 1000)))
            if not _insert_one(session, Passage, {**base, "pass_id": pass_id, "ring": gate.ring}):
                report["duplicates"] += 1
                continue
            report["accepted"] += 1
            touched.add(pass_id)
            _revoked_through(session, gate, pass_id, scan, report)
        else:
            reason = server_reason or scan.reason or "invalid"
            if _insert_one(session, ScanRefusal, {**base, "pass_id": pass_id, "reason": reason}):
                report["refused"] += 1
                if reason == "watchlist" and pass_id is not None:
                    watch_refused.add(pass_id)
            else:
                report["duplicates"] += 1
    session.flush()
    for pass_id in sorted(touched):
        report["conflicts"].extend(_conflicts(session, gate.event_id, pass_id))
    _watch_alerts(session, ctx, touched | watch_refused, now)
    if moves:
        hotstate.after_commit_offline(session, gate.event_id, ctx.max_ring, moves)
    return report


def _watch_alerts(session: Session, ctx, pass_ids: set[int], now: datetime) -> None:
    """Watched passes among the newly recorded offline scans alert officers as online
    scans do (an ``alert`` entry's holder passed; a ``reject`` one's was refused)."""
    from services.passes.gate import raise_watch_alert

    if not pass_ids:
        return
    refused, alerted = lists.watch_flags(session, ctx.event_id, now)
    for pass_id in sorted(pass_ids & (set(refused) | set(alerted))):
        raise_watch_alert(session, ctx, pass_id, now)


def _revoked_through(session: Session, gate: Gate, pass_id: int, scan: OfflineScan, report: dict) -> None:
    revoked_at = session.scalar(select(Revocation.created_at).where(Revocation.pass_id == pass_id))
    if revoked_at is None or revoked_at > scan.scanned_at:
        return
    report["revoked_passed"].append(
        {"pass_id": pass_id, "nonce": scan.nonce, "scanned_at": scan.scanned_at.isoformat()}
    )
    lists.raise_alert(
        session,
        event_id=gate.event_id,
        kind="revoked_passed",
        severity="reject",
        message=f"已作废通行证 {pass_id} 在离线闸机 {gate.name} 通过",
        pass_id=pass_id,
        gate_id=gate.id,
    )


def _conflicts(session: Session, event_id: int, pass_id: int) -> list[dict]:
    """Entries into one ring at two different gates with no exit in between."""
    rows = session.execute(
        select(
            Passage.nonce,
            Passage.gate_id,
            Passage.ring,
            Passage.direction,
            Passage.scanned_at,
            Passage.offline,
        )
        .where(Passage.pass_id == pass_id)
        .order_by(Passage.scanned_at, Passage.id)
    ).all()
    inside: dict[int, tuple] = {}
    out = []
    for row in rows:
        if row.direction == "out":
            for ring in [r for r in inside if r >= row.ring]:
                inside.pop(ring)
            continue
        first = inside.get(row.ring)
        if first is not None and first.gate_id != row.gate_id and (first.offline or row.offline):
            out.append(
                {
                    "pass_id": pass_id,
                    "ring": row.ring,
                    "first": {
                        "gate_id": first.gate_id,
                        "nonce": first.nonce,
                        "scanned_at": first.scanned_at.isoformat(),
                    },
                    "second": {
                        "gate_id": row.gate_id,
                        "nonce": row.nonce,
                        "scanned_at": row.scanned_at.isoformat(),
                    },
                }
            )
            _conflict_alert(session, event_id, pass_id, first, row)
        inside[row.ring] = row
    return out


def _conflict_alert(session: Session, event_id: int, pass_id: int, first, second) -> None:
    from models.passes import Alert

    details = f"{first.nonce}/{second.nonce}"
    exists = session.scalar(
        select(Alert.id).where(Alert.kind == "offline_conflict", Alert.details == details)
    )
    if exists is None:
        lists.raise_alert(
            session,
            event_id=event_id,
            kind="offline_conflict",
            severity="alert",
            message=f"通行证 {pass_id} 离线期间在两个闸机重复入场",
            pass_id=pass_id,
            gate_id=second.gate_id,
            details=details,
        )
