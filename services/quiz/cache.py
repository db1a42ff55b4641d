"""Redis work that must happen only after the database commit (leaderboards, balances).

Services call ``after_commit(session, fn)``; ``fn(redis)`` runs once the unit of work
commits and is dropped on rollback. A Redis failure there never fails the request: the
callback's owner marks its cache stale so the next read rebuilds it from SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
_KEY = "quiz_after_commit"


def app() -> Any:
    """The current Flask app (request, CLI or job context)."""
    from flask import current_app, has_app_context

    if has_app_context():
        return current_app._get_current_object()
    from jobs.context import get_app

    return get_app()


def client() -> Any:
    """The app's Redis (or in-process store); services never build their own."""
    return app().extensions["zhizhi"].redis


def after_commit(session: Session, fn: Callable[[Any], None]) -> None:
    if not session.info.get("quiz_listening"):
        session.info["quiz_listening"] = True
        event.listen(session, "after_commit", _run)
        event.listen(session, "after_rollback", _drop)
    session.info.setdefault(_KEY, []).append(fn)


def _run(session: Session) -> None:
    pending = session.info.pop(_KEY, [])
    if not pending:
        return
    r = client()
    for fn in pending:
        try:
            fn(r)
        except redis.RedisError as exc:
            log.warning("quiz cache update failed after commit: %s", type(exc).__name__)


def _drop(session: Session) -> None:
    session.info.pop(_KEY, None)


def rate_limit(person_id: int, action: str, limit: int, now_ts: float, window: int = 60) -> None:
    """Fixed-window counter in Redis; over ``limit`` raises RateLimited (nothing written).
    A Redis outage lets the request through: rate limiting protects, it never blocks work."""
    from core.errors import RateLimited

    key = f"quiz:rl:{action}:{person_id}:{int(now_ts // window)}"
    try:
        r = client()
        n = r.incr(key)
        if n == 1:
            r.expire(key, window * 2)
    except redis.RedisError:
        return
    if n > limit:
        raise RateLimited("作答太频繁，请稍后再试", code="answer_rate_limited")
