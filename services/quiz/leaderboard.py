"""Competition leaderboards: Redis sorted sets per (competition, view, scope unit, bracket),
with SQL over the attempts as the reference and the rebuild source.

Tie rule (documented, published): marks desc, accuracy desc, server-measured elapsed time
asc, submit time asc (then person id, so the order is total). One sorted-set score
encodes the first three keys (lower is better); equal scores fall back to the member
string "<submit ms>:<person id>", which sorts lexicographically in the same order.
Views: "pub" holds results submitted before the freeze (what is shown until the end),
"live" holds all results (shown after the competition is finalised).
"""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.identity import OrgLevel, OrgUnit, Person
from models.quiz import Attempt, AttemptStatus, Competition
from services.quiz import cache

SCOPE_LEVELS = (OrgLevel.community, OrgLevel.street, OrgLevel.district)
MAX_ELAPSED = 2**26 - 1  # ms (~18.6 h); durations are validated far below this
FINISHED = (AttemptStatus.submitted, AttemptStatus.expired)


def key(comp_id: int, view: str, unit_id: int, bracket: str) -> str:
    return f"quiz:lb:{comp_id}:{view}:{unit_id}:{bracket}"


def score(marks: float, accuracy_bp: int, elapsed_ms: int) -> int:
    m = 1023 - max(-1023, min(1023, round(marks)))  # 0..2046, 11 bits
    return (m << 40) | ((10000 - accuracy_bp) << 26) | min(max(elapsed_ms, 0), MAX_ELAPSED)


def member(attempt: Attempt) -> str:
    assert attempt.submitted_at is not None
    return f"{int(attempt.submitted_at.timestamp() * 1000):013d}:{attempt.person_id:010d}"


def order_by() -> tuple:
    return (
        Attempt.marks.desc(),
        Attempt.accuracy_bp.desc(),
        Attempt.elapsed_ms.asc(),
        Attempt.submitted_at.asc(),
        Attempt.person_id.asc(),
    )


def scope_units(session: Session, person_id: int) -> list[int]:
    """Community, street and district above the worker."""
    path = session.scalar(
        select(OrgUnit.path).join(Person, Person.org_unit_id == OrgUnit.id).where(Person.id == person_id)
    )
    ids = [int(p) for p in (path or "").split("/") if p]
    if not ids:
        return []
    return list(
        session.scalars(select(OrgUnit.id).where(OrgUnit.id.in_(ids), OrgUnit.level.in_(SCOPE_LEVELS)))
    )


def _entries(session: Session, comp: Competition, attempt: Attempt) -> list[tuple[str, str, int]]:
    views = ["live"]
    if comp.freeze_at is None or (attempt.submitted_at and attempt.submitted_at < comp.freeze_at):
        views.append("pub")
    s = score(attempt.marks, attempt.accuracy_bp, attempt.elapsed_ms)
    out = []
    for unit in scope_units(session, attempt.person_id):
        for bracket in ("all", f"L{attempt.bracket}"):
            out.extend((key(comp.id, v, unit, bracket), member(attempt), s) for v in views)
    return out


def on_result(session: Session, attempt: Attempt) -> None:
    """After commit: put the graded attempt on every board it belongs to (ZADD is
    idempotent, so a replay writes the same thing)."""
    comp = session.get(Competition, attempt.competition_id)
    assert comp is not None
    entries = _entries(session, comp, attempt)

    def apply(r: Any) -> None:
        try:
            pipe = r.pipeline(transaction=False)
            for k, m, s in entries:
                pipe.zadd(k, {m: s})
            pipe.execute()
        except redis.RedisError:
            r.delete(f"quiz:lb:{comp.id}:built")  # stale: the next read rebuilds from SQL
            raise

    cache.after_commit(session, apply)


def rebuild(session: Session, r: Any, comp_id: int) -> int:
    """Recreate every board of a competition from its graded attempts."""
    comp = session.get(Competition, comp_id)
    assert comp is not None
    for k in r.scan_iter(f"quiz:lb:{comp_id}:*"):
        r.delete(k)
    pipe = r.pipeline(transaction=False)
    attempts = list(
        session.scalars(
            select(Attempt).where(Attempt.competition_id == comp_id, Attempt.status.in_(FINISHED))
        )
    )
    for a in attempts:
        for k, m, s in _entries(session, comp, a):
            pipe.zadd(k, {m: s})
    pipe.zadd(f"quiz:lb:{comp_id}:built", {"ok": 0})
    pipe.execute()
    return len(attempts)


def ranked_redis(session: Session, comp: Competition, unit_id: int, bracket: str, view: str) -> list[int]:
    """Person ids in rank order from Redis (rebuilt from SQL if the boards are gone)."""
    r = cache.client()
    if not r.exists(f"quiz:lb:{comp.id}:built"):
        rebuild(session, r, comp.id)
    members = r.zrange(key(comp.id, view, unit_id, bracket), 0, -1)
    return [int((m.decode() if isinstance(m, bytes) else m).split(":")[1]) for m in members]


def ranked_sql(session: Session, comp: Competition, unit_id: int, bracket: str, view: str) -> list[int]:
    """The same ranking straight from the attempts (the reference)."""
    unit = session.get(OrgUnit, unit_id)
    assert unit is not None
    stmt = (
        select(Attempt.person_id)
        .join(Person, Person.id == Attempt.person_id)
        .join(OrgUnit, OrgUnit.id == Person.org_unit_id)
        .where(
            Attempt.competition_id == comp.id,
            Attempt.status.in_(FINISHED),
            OrgUnit.path.startswith(unit.path),
        )
        .order_by(*order_by())
    )
    if bracket != "all":
        stmt = stmt.where(Attempt.bracket == int(bracket.lstrip("L")))
    if view == "pub" and comp.freeze_at is not None:
        stmt = stmt.where(Attempt.submitted_at < comp.freeze_at)
    return list(session.scalars(stmt))


def ranked(session: Session, comp: Competition, unit_id: int, bracket: str, view: str) -> list[int]:
    try:
        return ranked_redis(session, comp, unit_id, bracket, view)
    except redis.RedisError:
        return ranked_sql(session, comp, unit_id, bracket, view)


def rank_of(session: Session, comp: Competition, person_id: int, unit_id: int, bracket: str, view: str):
    """1-based rank of one worker (ZRANK on the member), or None if not on the board."""
    a = session.scalar(
        select(Attempt).where(Attempt.competition_id == comp.id, Attempt.person_id == person_id)
    )
    if a is None or a.status not in FINISHED:
        return None
    r = cache.client()
    try:
        if not r.exists(f"quiz:lb:{comp.id}:built"):
            rebuild(session, r, comp.id)
        pos = r.zrank(key(comp.id, view, unit_id, bracket), member(a))
        return None if pos is None else pos + 1
    except redis.RedisError:
        ids = ranked_sql(session, comp, unit_id, bracket, view)
        return ids.index(person_id) + 1 if person_id in ids else None
