"""Redis-backed rate limits (fixed windows, one round trip per check).

Limits are data: ``LIMITS[name] = (max requests, window seconds)``. A route opts in with
``rate="login"``; the key is the actor when logged in, else the client address.
"""

from __future__ import annotations

import time

import redis

from core.errors import RateLimited

#: name -> (requests, seconds). Login and binding are per client; answers per person.
LIMITS: dict[str, tuple[int, int]] = {
    "login": (10, 60),
    "binding": (10, 600),
    "answer": (120, 60),
    "apply": (30, 60),
    "export": (10, 60),  # whole-table downloads (leaderboards): per person
}

_MESSAGES = {
    "login": "登录尝试过于频繁，请 {wait} 秒后再试",
    "binding": "绑定操作过于频繁，请 {wait} 秒后再试",
    "answer": "答题过于频繁，请 {wait} 秒后再试",
    "export": "导出过于频繁，请 {wait} 秒后再试",
}


def hit(client: redis.Redis, name: str, who: str, now: float | None = None) -> None:
    """Count one request of ``who`` against limit ``name``; raise ``RateLimited`` past it.

    If Redis is unreachable the request is let through: a limiter outage must not take
    logins down with it.
    """
    limit, window = LIMITS[name]
    now = time.time() if now is None else now
    bucket = int(now // window)
    key = f"zz:rl:{name}:{who}:{bucket}"
    try:
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window + 1)
        count = pipe.execute()[0]
    except redis.RedisError:
        return
    if count > limit:
        wait = max(1, int((bucket + 1) * window - now))
        message = _MESSAGES.get(name, "操作太频繁，请 {wait} 秒后再试").format(wait=wait)
        raise RateLimited(message, details={"retry_after": wait})
