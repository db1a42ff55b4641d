"""Online gate check (现场核验) — the hot path — and the passage flusher.

Per scan: the device's gate context and the verified token come from in-process
caches; revocation, the watch list, nonce dedup, anti-passback, occupancy and the
passage record are one Lua call (``hotstate.SCAN_LUA``). Passages land in a Redis
Stream first; :func:`drain` moves them into the database idempotently (unique nonce),
and the stream entries are deleted only after that commit, so none is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import ValidationFailed
from models.passes import Application, Event, Gate, Passage, PassCredential, ScanRefusal, TrustEntry, Zone
from services import keys
from services.passes import checks, hotstate, issuance, lists
from services.passes.events import gate_for_device, gate_key, key_scope
from services.passes.rules import ATTENTION_REASONS, GATE_DETAILS, GATE_REASONS, RULE_SET

CONTEXT_TTL = 30.0
KEY_REFRESH_MIN = 5.0


@dataclass
class GateContext:
    gate_id: int
    event_id: int
    ring: int
    direction: str
    max_ring: int
    max_inside: int | None
    gate_key: bytes
    verifiers: dict[str, Ed25519PublicKey]
    loaded_at: float


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
    return GateContext(
        gate_id=gate.id,
        event_id=event.id,
        ring=gate.ring,
        direction=gate.direction.value,
        max_ring=max(zones),
        max_inside=zones[gate.ring].max_inside if gate.ring in zones else None,
        gate_key=gate_key(event, kek),
        verifiers=verifiers,
        loaded_at=time.monotonic(),
    )


@dataclass
class Scan:
    qr: str
    nonce: str
    direction: str
    scanned_at: datetime
    holder_hash: str | None = None  # hex of the 8-byte tag an ID-card reader computed
    plate: str | None = None  # what the plate camera read


def _holder_read(ctx: GateContext, scan: Scan) -> bytes | None:
    if scan.plate:
        return issuance.plate_tag(ctx.gate_key, scan.plate.strip().upper())
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
    )
    if refusal is not None:
        return claims.object_id, refusal.reason, refusal.detail, ctx
    return claims.object_id, "", "", ctx


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
    db = session if callable(session) else lambda: session  # opened only on a cache miss
    ctx = contexts.get(db, person_id, kek)
    if ctx.direction != "both" and scan.direction != ctx.direction:
        raise ValidationFailed(fields={"direction": "与闸机方向不符"})
    now = now or utcnow()
    pass_id, verdict, detail, ctx = _verify(db, person_id, ctx, scan, kek, int(now.timestamp()))
    args = {
        "event_id": ctx.event_id,
        "nonce": scan.nonce,
        "pass_id": pass_id,
        "verdict": verdict,
        "detail": detail,
        "ring": ctx.ring,
        "direction": scan.direction,
        "max_inside": ctx.max_inside,
        "gate_id": ctx.gate_id,
        "scanned_at_ms": int(scan.scanned_at.timestamp() * 1000),
        "max_ring": ctx.max_ring,
        "ttl": RULE_SET["nonce_ttl_seconds"],
    }
    status, answer, info = _run(db, redis, args, now)
    reason, _, detail = answer.partition("|")
    if pass_id is not None and not info and reason not in ("invalid", "unknown_key"):
        info = _summary(db(), redis, ctx.event_id, pass_id)
    if reason == "watchlist" and status == "new":
        _gate_watch_alert(db(), ctx, pass_id)
    return answer_dict(reason, detail, pass_id, info, replayed=status == "dup")


def _run(db: Callable[[], Session], redis, args: dict, now: datetime) -> tuple[str, str, str]:
    res = hotstate.run_scan(redis, **args)
    if res[0] == "sync":
        hotstate.sync_event(redis, db(), args["event_id"], now)
        res = hotstate.run_scan(redis, **args)
    return res[0], res[1], res[2]


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


def _summary(session: Session, redis, event_id: int, pass_id: int) -> str:
    app = session.scalar(
        select(Application)
        .join(PassCredential, PassCredential.application_id == Application.id)
        .where(PassCredential.id == pass_id)
    )
    if app is None:
        return ""
    summary = issuance.holder_summary(app)
    redis.hset(hotstate.key(event_id, "info"), str(pass_id), summary)
    return summary


def _gate_watch_alert(session: Session, ctx: GateContext, pass_id: int | None) -> None:
    credential = session.get(PassCredential, pass_id) if pass_id else None
    app = session.get(Application, credential.application_id) if credential else None
    lists.raise_alert(
        session,
        event_id=ctx.event_id,
        kind="watchlist_gate",
        severity="reject",
        message=f"关注名单人员/车辆在闸机 {ctx.gate_id} 出示通行证 {pass_id}",
        subject_index=app.subject_index if app else None,
        pass_id=pass_id,
        gate_id=ctx.gate_id,
    )


# --- flushing the stream ------------------------------------------------------------


def _insert(session: Session, model, rows: list[dict]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(model.__table__)
    # executemany: one compiled statement, batched by the driver (insertmanyvalues).
    session.execute(ins.on_conflict_do_nothing(index_elements=["nonce"]), rows)


def drain(session: Session, redis, event_id: int, *, limit: int = 1000, now: datetime | None = None) -> list:
    """Insert up to ``limit`` stream entries (oldest first) as passages / refusals;
    returns their stream ids, to :func:`ack` after the caller commits. Idempotent."""
    now = now or utcnow()
    entries = redis.xrange(hotstate.key(event_id, "stream"), count=limit)
    passages, refusals = [], []
    for _id, raw in entries:
        f = {
            k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
            for k, v in raw.items()
        }
        row = {
            "nonce": f["n"],
            "event_id": event_id,
            "gate_id": int(f["g"]),
            "direction": f["d"],
            "offline": f.get("o") == "1",
            "scanned_at": datetime.fromtimestamp(int(f["t"]) / 1000, UTC),
            "recorded_at": now,
        }
        if f["x"] == "":
            passages.append({**row, "pass_id": int(f["p"]), "ring": int(f["r"])})
        else:
            refusals.append({**row, "pass_id": int(f["p"]) if f["p"] else None, "reason": f["x"]})
    known = set(
        session.scalars(
            select(PassCredential.id).where(PassCredential.id.in_({p["pass_id"] for p in passages}))
        )
    )
    for p in [p for p in passages if p["pass_id"] not in known]:
        # Signed by our key yet unknown here: keep the record as a refusal, never lose it.
        passages.remove(p)
        refusals.append({k: v for k, v in p.items() if k != "ring"} | {"reason": "invalid"})
    _insert(session, Passage, passages)
    _insert(session, ScanRefusal, refusals)
    session.flush()
    _trust_clean_passages(session, event_id, {p["pass_id"] for p in passages}, now)
    return [e[0] for e in entries]


def ack(redis, event_id: int, ids: list) -> None:
    if ids:
        redis.xdel(hotstate.key(event_id, "stream"), *ids)


def _trust_clean_passages(session: Session, event_id: int, pass_ids: set[int], now: datetime) -> None:
    """After N accepted passages the subject is trusted for the event and ring (three
    queries per flushed batch, whatever its size)."""
    if not pass_ids:
        return
    n = RULE_SET["trust_after_clean_passages"]
    counted = (
        select(Passage.pass_id, func.count().label("n"))
        .where(Passage.pass_id.in_(pass_ids))
        .group_by(Passage.pass_id)
        .subquery()
    )
    rows = session.execute(
        select(Application.subject_index, PassCredential.ring)
        .join(PassCredential, PassCredential.application_id == Application.id)
        .join(counted, counted.c.pass_id == PassCredential.id)
        .where(counted.c.n >= n)
    ).all()
    if not rows:
        return
    trusted = set(
        session.execute(
            select(TrustEntry.subject_index, TrustEntry.ring).where(
                TrustEntry.event_id == event_id, TrustEntry.active.is_(True), TrustEntry.valid_until > now
            )
        ).all()
    )
    for subject, ring in set(rows):
        if not any(s == subject and r >= ring for s, r in trusted):
            lists.trust_subject(
                session, event_id, subject, ring, source="clean_passages", actor_id=None, now=now
            )
            trusted.add((subject, ring))


def revocation_lag(session: Session, redis, event_id: int) -> bool:
    """True when Redis reflects an older revocation version than the database."""
    published = redis.get(hotstate.key(event_id, "rv"))
    db_version = session.scalar(select(Event.revocation_version).where(Event.id == event_id)) or 0
    return published is None or int(published) < db_version
