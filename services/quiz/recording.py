"""Recording write-behind quiz submits (services.quiz.intake) in PostgreSQL.

Each stream entry is recorded with the same ``attempts._finish`` the synchronous path
runs (items, answer events, points, leaderboards) and deleted from the stream only after
the commit. Recording is idempotent: an attempt that is no longer open is skipped, so a
replayed or concurrent drain changes nothing. An entry that cannot be recorded for a
reason other than the database going away is moved to ``quiz:submits:dead`` and logged,
never dropped.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import redis as redis_lib
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError

from models.quiz import Attempt, AttemptStatus, Paper, QuestionVersion
from services.quiz.intake import DEAD, STREAM, enabled, pending_key

log = logging.getLogger(__name__)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else v


def drain(db: Any, r: Any, *, limit: int = 500) -> int:
    """Record up to ``limit`` accepted submits (oldest first) in one transaction, then
    delete them from the stream. Returns how many entries left the stream."""
    return record(db, r, r.xrange(STREAM, count=limit))


def record(db: Any, r: Any, entries: list) -> int:
    """Record these stream entries in one transaction; then delete them."""
    from services.quiz import attempts

    if not entries:
        return 0
    parsed = []
    for sid, raw in entries:
        f = {_text(k): _text(v) for k, v in raw.items()}
        parsed.append((sid, int(f["a"]), int(f["p"]), json.loads(f["f"]), int(f["t"])))
    dead: list[dict[str, str]] = []
    with db.session() as s:
        stmt = select(Attempt).where(Attempt.id.in_({p[1] for p in parsed})).order_by(Attempt.id)
        if s.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        found = {a.id: a for a in s.scalars(stmt)}
        # Papers and question versions of the whole batch in two queries, not two per entry.
        papers = {
            p.id: p
            for p in s.scalars(select(Paper).where(Paper.id.in_({a.paper_id for a in found.values()})))
        }
        vids = {i.version_id for a in found.values() for i in a.items}
        versions = {v.id: v for v in s.scalars(select(QuestionVersion).where(QuestionVersion.id.in_(vids)))}
        for _sid, aid, _person, final, at_ms in parsed:
            attempt = found.get(aid)
            if attempt is None or attempt.status != AttemptStatus.in_progress:
                continue  # recorded before (a replayed drain) or closed by an operator
            at = datetime.fromtimestamp(at_ms / 1000, UTC)
            try:
                with s.begin_nested(), s.no_autoflush:
                    for item in attempt.items:
                        response, certainty = final.get(str(item.position), [None, None])
                        item.response, item.certainty = response, certainty
                        if response:
                            item.saved_at = at
                    attempts._finish(
                        s, attempt, at, AttemptStatus.submitted, papers[attempt.paper_id], versions
                    )
            except (OperationalError, InterfaceError):
                raise  # the database went away: keep every entry for the next drain
            except Exception as exc:  # noqa: BLE001 - one bad entry must not block the rest
                log.error("quiz submit %s not recorded: %s", aid, type(exc).__name__)
                s.expire(attempt)
                dead.append({"a": str(aid), "f": json.dumps(final), "t": str(at_ms), "e": type(exc).__name__})
    pipe = r.pipeline(transaction=False)
    for fields in dead:
        pipe.xadd(DEAD, fields)
    pipe.xdel(STREAM, *[p[0] for p in parsed])
    for _sid, aid, person, _f, _t in parsed:
        pipe.hdel(pending_key(person), aid)
    pipe.execute()
    return len(parsed)


def drain_all(db: Any, r: Any, *, budget: float = 50.0, max_rounds: int = 1000) -> int:
    """Drain oldest first until the stream is empty or ``budget`` seconds have passed
    (the next run goes on), one drainer at a time."""
    moved = 0
    deadline = time.monotonic() + budget
    with r.lock("quiz:drain:lock", timeout=budget + 70, blocking_timeout=budget):
        for _ in range(max_rounds):
            n = drain(db, r)
            moved += n
            if n == 0 or time.monotonic() > deadline:
                break
    return moved


def settle(app: Any, person_id: int | None = None) -> None:
    """Before a read that must be exact: record this person's accepted submits (found by
    their stream ids, however long the stream), or drain the stream for reads across
    workers (bounded to a few seconds). One round trip when nothing is pending; a Redis
    outage skips it."""
    if not enabled(app):
        return
    ext = app.extensions["zhizhi"]
    r = ext.redis
    try:
        if person_id is None:
            if r.xlen(STREAM):
                drain_all(ext.db, r, budget=5.0)
            return
        pending = r.hgetall(pending_key(person_id))
        if not pending:
            return
        pipe = r.pipeline(transaction=False)
        for sid in pending.values():
            pipe.xrange(STREAM, sid, sid)
        entries = [e for found in pipe.execute() for e in found]
        if len(entries) < len(pending):  # recorded meanwhile by another drain
            here = {_text(v) for _sid, raw in entries for k, v in raw.items() if _text(k) == "a"}
            gone = [a for a in map(_text, pending) if a not in here]
            r.hdel(pending_key(person_id), *gone)
        record(ext.db, r, entries)
    except (redis_lib.ConnectionError, redis_lib.exceptions.LockError):
        return
