"""Points ledger: append-only entries unique on (person, source type, source id); caps per
source per Asia/Shanghai day/week from the versioned rules; balances and ranks are SUMs of
the ledger with Redis sorted sets (per org scope) as the fast path, rebuildable any time."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.auth import Actor, require_jurisdiction
from core.db import utcnow
from core.errors import NotFound, ValidationFailed
from core.pagination import cursor_id, encode_cursor
from models.identity import OrgUnit, Person
from models.quiz import PointEntry
from services.quiz import audit, cache
from services.quiz.config import period_bounds, rules_at

READY = "quiz:pts:ready"
PERIOD_WORD = {"day": "今日", "week": "本周"}


def zkey(scope: str | int) -> str:
    return f"quiz:pts:{scope}"


@dataclass
class Award:
    granted: int
    entry_id: int | None
    note: str | None = None
    duplicate: bool = False


def award(
    session: Session,
    person_id: int,
    source_type: str,
    source_id: str,
    points: int,
    reason: str,
    now: datetime | None = None,
    actor_id: int | None = None,
) -> Award:
    """Append one ledger entry, limited by the source's cap in its period.

    Idempotent: the same (person, source type, source id) returns the first award. When
    the cap leaves no room nothing is written and ``note`` says why (shown to the worker).
    Positive awards lock per (person, source type) so concurrent answers cannot overshoot.
    """
    now = now or utcnow()
    existing = _entry(session, person_id, source_type, source_id)
    if existing is not None:
        return Award(existing.delta, existing.id, None, duplicate=True)
    rules = rules_at(now)
    rule = rules.sources[source_type]
    note = None
    granted = points
    if rule.cap is not None and points > 0:
        _lock(session, person_id, source_type)
        used = used_in_period(session, person_id, source_type, now)
        granted = max(0, min(points, rule.cap - used))
        if granted < points:
            word = PERIOD_WORD[rule.period or "day"]
            if granted:
                note = f"{rule.label}本次计 {granted} 分（{word}已达上限 {rule.cap} 分）"
            else:
                note = f"{rule.label}积分已达上限（{word} {used}/{rule.cap}），本次不计分"
    if granted == 0 and points != 0:
        return Award(0, None, note)
    entry = PointEntry(
        person_id=person_id,
        delta=granted,
        source_type=source_type,
        source_id=source_id,
        reason=reason[:200],
        rules_version=rules.version,
        created_by_id=actor_id,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        again = _entry(session, person_id, source_type, source_id)
        assert again is not None
        return Award(again.delta, again.id, None, duplicate=True)
    if granted:
        _defer_increment(session, person_id, granted)
    return Award(granted, entry.id, note)


def _entry(session: Session, person_id: int, source_type: str, source_id: str) -> PointEntry | None:
    return session.scalar(
        select(PointEntry).where(
            PointEntry.person_id == person_id,
            PointEntry.source_type == source_type,
            PointEntry.source_id == source_id,
        )
    )


def _lock(session: Session, person_id: int, source_type: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"quiz-cap:{person_id}:{source_type}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def used_in_period(session: Session, person_id: int, source_type: str, now: datetime) -> int:
    rule = rules_at(now).sources[source_type]
    start, end = period_bounds(now, rule.period or "day")
    return int(
        session.scalar(
            select(func.coalesce(func.sum(PointEntry.delta), 0)).where(
                PointEntry.person_id == person_id,
                PointEntry.source_type == source_type,
                PointEntry.delta > 0,
                PointEntry.created_at >= start,
                PointEntry.created_at < end,
            )
        )
    )


def caps_today(session: Session, person_id: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """ "今日 x/cap" per capped source, as published to workers."""
    now = now or utcnow()
    out = []
    for name, rule in rules_at(now).sources.items():
        if rule.cap is None:
            continue
        used = used_in_period(session, person_id, name, now)
        word = PERIOD_WORD[rule.period or "day"]
        out.append(
            {
                "source": name,
                "label": rule.label,
                "period": rule.period,
                "used": used,
                "cap": rule.cap,
                "text": f"{rule.label} {word} {used}/{rule.cap}",
            }
        )
    return out


def adjust(
    session: Session,
    actor: Actor,
    person_id: int,
    delta: int,
    reason: str,
    ref: str,
    now: datetime | None = None,
) -> Award:
    """Trainer award (positive) or correction (补发/扣减) as a new entry; ``ref`` makes it
    idempotent. Needs jurisdiction over the worker. Audited: ``quiz.points.award`` /
    ``quiz.points.correction`` on the worker, with the reason, the entry and the balance
    before and after (a replay of the same ``ref`` writes neither entry nor audit row)."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("人员不存在", code="person_not_found")
    require_jurisdiction(actor, _org_path(session, person.org_unit_id), "trainer")
    if delta == 0 or not reason.strip():
        raise ValidationFailed(fields={"delta": "不能为 0"} if delta == 0 else {"reason": "必须填写原因"})
    now = now or utcnow()
    source = "award" if delta > 0 else "correction"
    before = balance_sql(session, person_id)
    got = award(session, person_id, source, f"{actor.person_id}:{ref}", delta, reason, now, actor.person_id)
    if not got.duplicate and got.entry_id is not None:
        data = {
            "entry_id": got.entry_id,
            "delta": got.granted,
            "reason": reason,
            "ref": ref,
            "balance": {"before": before, "after": before + got.granted},
        }
        audit.record(session, actor.person_id, f"quiz.points.{source}", "person", person_id, data, now)
    return got


def _org_path(session: Session, org_unit_id: int | None) -> str | None:
    return session.scalar(select(OrgUnit.path).where(OrgUnit.id == org_unit_id)) if org_unit_id else None


def scopes_of(session: Session, person_id: int) -> list[str]:
    """Cache scopes a person's points count in: "all" and every org unit above them."""
    path = session.scalar(
        select(OrgUnit.path).join(Person, Person.org_unit_id == OrgUnit.id).where(Person.id == person_id)
    )
    return ["all", *[p for p in (path or "").split("/") if p]]


def check_scope(session: Session, person_id: int, scope: int | None) -> str | int:
    """The rank scope a worker may ask for: "all" (None) or a unit they belong to."""
    if scope is None:
        return "all"
    if str(scope) not in scopes_of(session, person_id):
        raise ValidationFailed(fields={"scope": "您不在该组织范围内"})
    return scope


def _defer_increment(session: Session, person_id: int, delta: int) -> None:
    scopes = scopes_of(session, person_id)

    def apply(r: Any) -> None:
        try:
            if not r.exists(READY):
                return
            pipe = r.pipeline()
            for s in scopes:
                pipe.zincrby(zkey(s), delta, person_id)
            pipe.execute()
        except redis.RedisError:
            r.delete(READY)
            raise

    cache.after_commit(session, apply)


def balance_sql(session: Session, person_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(PointEntry.delta), 0)).where(PointEntry.person_id == person_id)
        )
    )


def rebuild(session: Session, r: Any) -> int:
    """Recompute every scope's sorted set from the ledger; returns the number of workers."""
    rows = session.execute(
        select(PointEntry.person_id, func.sum(PointEntry.delta), OrgUnit.path)
        .join(Person, Person.id == PointEntry.person_id)
        .outerjoin(OrgUnit, OrgUnit.id == Person.org_unit_id)
        .group_by(PointEntry.person_id, OrgUnit.path)
    ).all()
    r.delete(READY)
    for key in r.scan_iter("quiz:pts:*"):
        r.delete(key)
    pipe = r.pipeline(transaction=False)
    for n, (pid, total, path) in enumerate(rows, 1):
        for s in ["all", *[p for p in (path or "").split("/") if p]]:
            pipe.zadd(zkey(s), {str(pid): int(total)})
        if n % 5000 == 0:
            pipe.execute()
    pipe.execute()
    r.set(READY, "1")
    return len(rows)


# One round trip: nil when the sets are not built, else {balance, workers above, size}.
_STANDING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local total = math.floor(tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0'))
return {total, redis.call('ZCOUNT', KEYS[2], '(' .. total, '+inf'), redis.call('ZCARD', KEYS[2])}
"""


def standing(session: Session, person_id: int, scope: str | int = "all") -> dict[str, Any]:
    """Balance and rank (1 + number of workers with more points) in ``scope``."""
    r = cache.client()
    try:
        got = r.register_script(_STANDING)(keys=[READY, zkey(scope)], args=[person_id])
        if got is None:
            rebuild(session, r)
            got = r.register_script(_STANDING)(keys=[READY, zkey(scope)], args=[person_id])
        total, above, size = (int(x) for x in got)
        return {"balance": total, "rank": above + 1, "of": max(size, above + 1), "scope": str(scope)}
    except redis.RedisError:
        return standing_sql(session, person_id, scope)


def standing_sql(session: Session, person_id: int, scope: str | int = "all") -> dict[str, Any]:
    """The same answer straight from the ledger (the reference for the cache)."""
    totals = select(PointEntry.person_id.label("pid"), func.sum(PointEntry.delta).label("total")).group_by(
        PointEntry.person_id
    )
    if scope != "all":
        path = session.scalar(select(OrgUnit.path).where(OrgUnit.id == int(scope)))
        totals = (
            totals.join(Person, Person.id == PointEntry.person_id)
            .join(OrgUnit, OrgUnit.id == Person.org_unit_id)
            .where(OrgUnit.path.startswith(path or "/none/"))
        )
    sub = totals.subquery()
    mine = balance_sql(session, person_id)
    above = session.scalar(select(func.count()).select_from(sub).where(sub.c.total > mine)) or 0
    size = session.scalar(select(func.count()).select_from(sub)) or 0
    return {"balance": mine, "rank": above + 1, "of": max(size, above + 1), "scope": str(scope)}


def history(session: Session, person_id: int, cursor: str | None, limit: int = 20) -> dict[str, Any]:
    stmt = select(PointEntry).where(PointEntry.person_id == person_id).order_by(PointEntry.id.desc())
    if cursor:
        stmt = stmt.where(PointEntry.id < cursor_id(cursor))
    rows = list(session.scalars(stmt.limit(limit + 1)))
    nxt = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {
        "items": [
            {
                "id": e.id,
                "delta": e.delta,
                "source_type": e.source_type,
                "reason": e.reason,
                "created_at": e.created_at.isoformat(),
            }
            for e in rows[:limit]
        ],
        "next_cursor": nxt,
    }
