"""Online gate check (现场核验) — the hot path.

Per scan: the device's gate context and the verified token come from in-process
caches; revocation, the watch list, nonce dedup, anti-passback, occupancy and the
passage record are one Lua call (``hotstate.SCAN_LUA``), and the answer's JSON is
cached by its content. A scan of a known pass therefore costs one Redis round trip
and no database statement. Passages land in a Redis Stream first;
``services.passes.passages`` moves them into the database (``drain``/``ack``, re-exported
here) without losing any.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import Unavailable, ValidationFailed
from models.passes import Alert, AlertStatus, Application, Event, Gate, PassCredential, WatchSeverity, Zone
from services import keys
from services.passes import checks, hotstate, issuance, lists
from services.passes.events import gate_for_device, gate_key, key_scope
from services.passes.passages import ack, drain, revocation_lag
from services.passes.rules import ATTENTION_REASONS, GATE_DETAILS, GATE_REASONS, RULE_SET

__all__ = ["GateContext", "Scan", "ack", "answer_dict", "check", "check_json", "drain", "revocation_lag"]

CONTEXT_TTL = 30.0
KEY_REFRESH_MIN = 5.0
PLATE_REQUIRED = "车辆通道须提供车牌识别结果或人工录入的车牌号"
REDIS_DOWN = "闸机核验服务暂时不可用，请用同一 nonce 重试，或切换到离线核验"


@dataclass
class GateContext:
    gate_id: int
    gate_name: str
    event_id: int
    ring: int
    direction: str
    vehicle: bool
    max_ring: int
    max_inside: int | None
    gate_key: bytes
    verifiers: dict[str, Ed25519PublicKey]
    loaded_at: float
    plan: hotstate.GateScan  # the constant parts of this gate's scan command
    tz: tzinfo  # the event's time zone (holders' daily windows are in its local time)


class _Contexts:
    """person id of a gate device -> its GateContext, refreshed every CONTEXT_TTL s."""

    def __init__(self) -> None:
        self._data: dict[int, GateContext] = {}
        self._lock = threading.Lock()

    def get(
        self, db: Callable[[], Session], person_id: int, kek: bytes, *, force: bool = False
    ) -> GateContext:
        ctx = self._data.get(person_id)
        if ctx is not None and not force and time.monotonic() - ctx.loaded_at < CONTEXT_TTL:
            return ctx
        session = db()
        ctx = load_context(session, gate_for_device(session, person_id), kek)
        with self._lock:
            self._data[person_id] = ctx
        return ctx

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


contexts = _Contexts()


def load_context(session: Session, gate: Gate, kek: bytes) -> GateContext:
    event = session.get(Event, gate.event_id)
    zones = {z.ring: z for z in session.scalars(select(Zone).where(Zone.event_id == event.id))}
    ring = keys.verify_ring(session, key_scope(event.id))
    verifiers = {r.kid: ring.verifier(r.kid) for r in ring.records if ring.verifier(r.kid) is not None}
    max_ring = max(zones)
    max_inside = zones[gate.ring].max_inside if gate.ring in zones else None
    return GateContext(
        gate_id=gate.id,
        gate_name=gate.name,
        event_id=event.id,
        ring=gate.ring,
        direction=gate.direction.value,
        vehicle=gate.vehicle,
        max_ring=max_ring,
        max_inside=max_inside,
        gate_key=gate_key(event, kek),
        verifiers=verifiers,
        loaded_at=time.monotonic(),
        plan=hotstate.GateScan(
            event.id, gate.id, gate.ring, max_ring, max_inside, RULE_SET["nonce_ttl_seconds"]
        ),
        tz=ZoneInfo(event.timezone),
    )


@dataclass
class Scan:
    """One scan as the device reports it (the API passes its ``ScanIn``, same fields)."""

    qr: str
    nonce: str
    direction: str
    scanned_at: datetime
    holder_hash: str | None = None  # hex of the 8-byte tag an ID-card reader computed
    plate: str | None = None  # what the plate camera (or the operator) read


def _holder_read(ctx: GateContext, scan: Scan) -> bytes | None:
    """The holder tag to compare: the plate's at a vehicle lane, else the ID reader's."""
    if ctx.vehicle:
        return checks.plate_tag(ctx.gate_key, checks.normalize_plate_read(scan.plate or ""))
    if scan.holder_hash:
        try:
            return bytes.fromhex(scan.holder_hash)
        except ValueError:
            raise ValidationFailed(fields={"holder_hash": "应为 16 位十六进制"}) from None
    return None


def _verify(db: Callable[[], Session], person_id: int, ctx: GateContext, scan: Scan, kek: bytes, now: int):
    """(pass_id, verdict, detail, ctx) for everything checked before the Lua script."""
    try:
        try:
            claims = checks.verify_pass_token(scan.qr, ctx.verifiers.get, ctx.event_id)
        except checks.Refusal as exc:
            if exc.reason != "unknown_key" or time.monotonic() - ctx.loaded_at < KEY_REFRESH_MIN:
                raise
            ctx = contexts.get(db, person_id, kek, force=True)  # a key rotated since we loaded
            claims = checks.verify_pass_token(scan.qr, ctx.verifiers.get, ctx.event_id)
    except checks.Refusal as exc:
        return None, exc.reason, exc.detail, ctx
    refusal = checks.after_revocation(
        claims,
        gate_ring=ctx.ring,
        now=now,
        leeway=RULE_SET["scan_leeway_seconds"],
        holder_read=_holder_read(ctx, scan),
        vehicle_lane=ctx.vehicle,
        tz=ctx.tz,
        direction=scan.direction,
    )
    if refusal is not None:
        return claims.object_id, refusal.reason, refusal.detail, ctx
    return claims.object_id, "", "", ctx


def _check(
    session: Session | Callable[[], Session],
    redis,
    person_id: int,
    scan: Scan,
    kek: bytes,
    now: datetime | None,
) -> tuple[int | None, bytes]:
    """(pass id, the script's reply) of one scan: ``N`` (new) or ``D`` (replayed nonce),
    ``<reason>|<detail>``, a newline, the holder summary. Kept as bytes: the common
    answers are encoded once (see :func:`check_json`)."""
    db = session if callable(session) else lambda: session  # opened only on a cache miss
    ctx = contexts.get(db, person_id, kek)
    direction = scan.direction
    if ctx.direction != "both" and direction != ctx.direction:
        raise ValidationFailed(fields={"direction": "与闸机方向不符"})
    if ctx.vehicle and not (scan.plate and checks.normalize_plate_read(scan.plate)):
        raise ValidationFailed(fields={"plate": PLATE_REQUIRED})
    now_s = int(time.time() if now is None else now.timestamp())
    pass_id, verdict, detail, ctx = _verify(db, person_id, ctx, scan, kek, now_s)
    ts_ms = int(scan.scanned_at.timestamp() * 1000)
    try:
        reply = ctx.plan.run(redis, scan.nonce, pass_id, verdict, detail, direction, ts_ms)
        if reply == b"S":  # gate state not in Redis yet (first scan, Redis restarted, a deploy)
            hotstate.sync_event(redis, db(), ctx.event_id, now or utcnow())
            reply = ctx.plan.run(redis, scan.nonce, pass_id, verdict, detail, direction, ts_ms)
        if pass_id is not None and reply.endswith(b"\n") and not reply.startswith(_UNVERIFIED, 1):
            reply += _summary(db(), redis, ctx.event_id, pass_id).encode()  # not in Redis yet
    except (RedisConnectionError, RedisTimeoutError):
        # The script either ran whole or not at all, so the same nonce retried later is
        # answered once (the first answer if it did run); nothing else was written.
        raise Unavailable(REDIS_DOWN) from None
    if reply[:1] == b"A" or reply.startswith(b"Nwatchlist|"):
        raise_watch_alert(db(), ctx, pass_id, now or utcnow())
    return pass_id, reply


_UNVERIFIED = (b"invalid|", b"unknown_key|")


def check(
    session: Session | Callable[[], Session],
    redis,
    person_id: int,
    scan: Scan,
    *,
    kek: bytes,
    now: datetime | None = None,
) -> dict:
    """Answer one scan. Side effects: Redis (nonce answer, passage stream, inside state);
    the database only for a first-time summary miss or a watch-list alert.
    Idempotent per nonce: a repeated nonce returns the first answer and logs nothing,
    unless the pass has been revoked since (then ``revoked``)."""
    return _answer(*_check(session, redis, person_id, scan, kek, now))


def _answer(pass_id: int | None, reply: bytes) -> dict:
    answer, _, info = reply[1:].decode().partition("\n")
    reason, _, detail = answer.partition("|")
    return answer_dict(reason, detail, pass_id, info, replayed=reply[:1] == b"D")


def answer_dict(reason: str, detail: str, pass_id: int | None, info: str, *, replayed: bool = False) -> dict:
    ok = reason == ""
    return {
        "result": "ok" if ok else "error",
        "reason": None if ok else reason,
        "message": "核验通过，请通行" if ok else GATE_REASONS.get(reason, "核验未通过"),
        "detail": GATE_DETAILS.get(detail) if detail else None,
        "pass_id": pass_id,
        "holder": info or None,
        "require_attention": reason in ATTENTION_REASONS,
        "replayed": replayed,
    }


_BODIES: dict[tuple, bytes] = {}
_BODIES_MAX = 50_000


def check_json(
    session: Session | Callable[[], Session],
    redis,
    person_id: int,
    scan: Scan,
    *,
    kek: bytes,
    now: datetime | None = None,
) -> bytes:
    """:func:`check`, answered as the API envelope's UTF-8 JSON. Answers repeat (a
    pass scanned in and out answers the same each time), so the encoded body is
    cached by the script's reply."""
    answer = _check(session, redis, person_id, scan, kek, now)
    body = _BODIES.get(answer)
    if body is None:
        data = _answer(*answer)
        body = json.dumps({"ok": True, "data": data}, ensure_ascii=False, separators=(",", ":")).encode()
        if len(_BODIES) >= _BODIES_MAX:
            _BODIES.clear()
        _BODIES[answer] = body
    return body


def _summary(session: Session, redis, event_id: int, pass_id: int) -> str:
    app = session.scalar(
        select(Application)
        .join(PassCredential, PassCredential.application_id == Application.id)
        .where(PassCredential.id == pass_id)
    )
    if app is None:
        return ""
    summary = issuance.holder_summary(app)
    redis.hset(hotstate.pass_key(event_id, pass_id), "i", summary)
    return summary


def raise_watch_alert(session: Session, ctx: GateContext, pass_id: int | None, now: datetime) -> None:
    """Alert officers that a watched subject showed a pass at this gate, with the watch
    entry's own severity (clearing an ``alert`` one trusts the subject). While an alert
    of this pass at this gate is open, further scans raise no new one."""
    credential = session.get(PassCredential, pass_id) if pass_id else None
    if credential is None:
        return
    open_alert = session.scalar(
        select(Alert.id).where(
            Alert.event_id == ctx.event_id,
            Alert.status == AlertStatus.open,
            Alert.kind == "watchlist_gate",
            Alert.pass_id == pass_id,
            Alert.gate_id == ctx.gate_id,
        )
    )
    if open_alert is not None:
        return
    app = session.get(Application, credential.application_id)
    entry = lists.gate_watch_entry(session, app, now=now)
    if entry is None:  # the entry ended since the gates' flags were published
        return
    what = "拒绝通行" if entry.severity == WatchSeverity.reject else "放行并预警"
    lists.raise_alert(
        session,
        event_id=ctx.event_id,
        kind="watchlist_gate",
        severity=entry.severity.value,
        message=f"关注名单（{what}）人员/车辆在闸机「{ctx.gate_name}」出示通行证 {pass_id}：{entry.reason}",
        subject_index=app.subject_index,
        pass_id=pass_id,
        gate_id=ctx.gate_id,
        watch_entry_id=entry.id,
    )
