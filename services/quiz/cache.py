"""Redis work that must happen only after the database commit (leaderboards, balances).

Services call ``after_commit(session, fn)``; ``fn(redis)`` runs once the unit of work
commits and is dropped on rollback. A Redis failure there never fails the request: the
callback's owner marks its cache stale so the next read rebuilds it from SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import redis
from sqlalchemy.orm import Session

from core import db

log = logging.getLogger(__name__)


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
    """``fn(redis)`` once the unit of work commits (dropped on rollback)."""
    db.after_commit(session, partial(_run, fn))


def _run(fn: Callable[[Any], None]) -> None:
    try:
        fn(client())
    except redis.RedisError as exc:
        log.warning("quiz cache update failed after commit: %s", type(exc).__name__)


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
