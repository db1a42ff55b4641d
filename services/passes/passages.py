"""Moving gate scans from the Redis stream into the database (write-behind).

:func:`drain` inserts stream entries as passages / refused scans, idempotently on the
scan nonce; the caller commits and only then calls :func:`ack` to delete them from the
stream, so no accepted scan is lost. ``jobs.passes.flush_passages`` runs this every
minute (and a read that must be exact may run it first).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db import utcnow
from models.passes import Application, Event, Passage, PassCredential, ScanRefusal, TrustEntry
from services.passes import hotstate, lists
from services.passes.rules import RULE_SET


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
        f = _fields(raw)
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


_PACKED = ("n", "p", "g", "r", "d", "t", "o", "x")


def _fields(raw: dict) -> dict[str, str]:
    """A stream entry as named fields: the packed ``e`` field the scan script writes
    (``nonce|pass|gate|ring|direction|ms|offline|reason``; only the nonce is free text,
    so it is split from the right), or one field per value as entries written before
    that format still in the stream after a deploy."""
    f = {
        k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
        for k, v in raw.items()
    }
    packed = f.get("e")
    if packed is None:
        return f
    return dict(zip(_PACKED, packed.rsplit("|", len(_PACKED) - 1), strict=True))


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
