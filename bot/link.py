"""This thread's own Redis connection for the bot's two scripts per message.

Commands go straight to the connection (no pool checkout, no command machinery: about
half the client-side cost of a redis-py call). ``send`` does not wait for the reply;
pending replies are read before the connection's next command, so it always answers in
step, and Redis applies one connection's commands in the order they were sent.

Failures: a reply that was not waited for and turns out to be an error is logged; a
connection found closed before a command is sent is replaced and the command sent on
the new one; a failure after a command was sent is raised (the engine answers "busy"
and the platform may retry), as nothing can tell whether Redis ran it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import select
import socket
import threading
from typing import Any

import redis
from redis.exceptions import NoScriptError, ResponseError

log = logging.getLogger("zhizhi.bot")


class Script:
    """A Lua script and its SHA-1 (the name Redis caches it under)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis script id)


class Link:
    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self._conn: Any = None
        self._pending = 0  # replies of commands sent without waiting, not yet read

    def reset(self) -> None:
        conn, self._conn, self._pending = self._conn, None, 0
        if conn is not None:
            with contextlib.suppress(redis.RedisError, OSError):  # closing a broken socket
                conn.disconnect()

    def _ready(self) -> Any:
        """The connection, with no reply outstanding; a closed one replaced."""
        conn = self._conn
        if conn is not None and self._pending:
            try:
                while self._pending:
                    self._pending -= 1
                    try:
                        conn.read_response()
                    except ResponseError as exc:
                        log.error("bot: a Redis script sent without waiting failed: %s", exc)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.warning("bot: Redis connection lost before a sent script was confirmed (%s)", exc)
                self.reset()
        elif conn is not None and _closed(conn):
            self.reset()
        if self._conn is None:
            self._conn = self.pool.make_connection()
        return self._conn

    def call(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """Run ``script`` and return its reply (EVALSHA; EVAL when Redis lacks it)."""
        conn = self._ready()
        try:
            conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
            try:
                return conn.read_response()
            except NoScriptError:
                conn.send_command("EVAL", script.source, len(keys), *keys, *args)
                return conn.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self.reset()
            raise

    def send(self, script: Script, keys: list[str], args: list[Any]) -> None:
        """Send ``script`` without waiting for its reply (EVAL: never "no such script")."""
        conn = self._ready()
        try:
            conn.send_command("EVAL", script.source, len(keys), *keys, *args)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self.reset()
            raise
        self._pending += 1


def _closed(conn: Any) -> bool:
    """True if the server closed an idle connection (readable with nothing expected)."""
    sock = getattr(conn, "_sock", None)
    if not isinstance(sock, socket.socket):
        return False  # not connected yet, or the in-process store
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


_local = threading.local()


def thread_link(client: redis.Redis) -> Link:
    """The ``Link`` of this thread for ``client``'s connection pool."""
    links = _local.__dict__.setdefault("links", {})
    link = links.get(id(client.connection_pool))
    if link is None or link.pool is not client.connection_pool:
        link = links[id(client.connection_pool)] = Link(client)
    return link
