"""Key-value store: Redis when ``REDIS_URL`` is set, an in-process store otherwise.

The in-process store is ``fakeredis`` (same API, Lua scripts included), so code that
uses locks, ``SET NX EX`` dedup keys, sorted sets and scripts runs unchanged in the
embedded default. Nothing here connects at import time.
"""

from __future__ import annotations

import threading

import redis

_local_servers: dict[str, object] = {}
_lock = threading.Lock()


def connect(url: str | None, *, decode_responses: bool = False) -> redis.Redis:
    """Return a client for ``url``, or for the process-wide in-process store if None."""
    if url:
        return redis.Redis.from_url(
            url,
            decode_responses=decode_responses,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )
    import fakeredis  # only the embedded default needs it

    with _lock:
        server = _local_servers.get("default")
        if server is None:
            server = _local_servers["default"] = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=server, decode_responses=decode_responses)


def ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
