"""This thread's own Redis connection for the bot's two scripts per message.

The client's Connection connects (authentication, database, TLS); then commands packed
by hiredis go straight to its socket and replies are parsed by a hiredis Reader from a
reusable buffer: no pool checkout, no command machinery, no health-check bookkeeping.
On a plain TCP or Unix socket the timeout moves into the kernel (``SO_RCVTIMEO`` /
``SO_SNDTIMEO``, socket blocking, as core.redislink does): CPython polls before every
send and receive on a socket with a Python-level timeout, two more system calls and
two more GIL hand-offs per script. Clients without a real socket (the in-process store)
use the Connection's own send/read.

``send`` does not wait for the reply; pending replies are read before the connection's
next command, so it always answers in step, and Redis applies one connection's commands
in the order they were sent.

Failures: a reply that was not waited for and turns out to be an error is logged, and
so is a connection lost before it came; a connection found closed before a command is
sent (checked when no reply is pending, or after an idle while) is replaced and the
command sent on the new one; a failure after a command was sent is raised as
``redis.ConnectionError`` or ``redis.TimeoutError`` (the engine answers "busy" and the
platform may retry), as nothing can tell whether Redis ran it. An error reply to a
waited command is raised as ``ResponseError``, the connection kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import select
import socket
import threading
import time
from typing import Any

import hiredis
import redis
from redis.exceptions import NoScriptError, ResponseError

from core.redislink import _kernel_timeout as kernel_timeout

log = logging.getLogger("zhizhi.bot")

#: seconds unused after which a connection is checked for a close by the server before
#: the next command, even when a pending reply was read from it (Redis' ``timeout`` is
#: whole seconds); without a pending reply it is always checked.
IDLE_CHECK = 1.0


class Script:
    """A Lua script and its SHA-1 (the name Redis caches it under)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis script id)


class Link:
    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self.generation = _generation[0]
        self._conn: Any = None
        self._sock: socket.socket | None = None  # set: hiredis talks on it directly
        self._reader: Any = None
        self._buf = bytearray(4096)
        self._pending = 0  # replies of commands sent without waiting, not yet read
        self._used = 0.0  # time.monotonic() of the last command sent

    def reset(self) -> None:
        conn, self._conn, self._sock, self._pending = self._conn, None, None, 0
        if conn is not None:
            with contextlib.suppress(redis.RedisError, OSError):  # closing a broken socket
                conn.disconnect()

    def _connect(self) -> None:
        conn = self.pool.make_connection()
        conn.connect()
        sock = getattr(conn, "_sock", None)
        self._conn = conn
        if isinstance(sock, socket.socket):
            kernel_timeout(sock)
            self._sock, self._reader = sock, hiredis.Reader()

    def _ready(self) -> None:
        """Connected, with no reply outstanding; a closed connection replaced."""
        if self._conn is not None:
            check = not self._pending or time.monotonic() - self._used > IDLE_CHECK
            if self._pending:
                self._drain()
            if check and self._conn is not None and _closed(self._sock):
                self.reset()
        if self._conn is None:
            self._connect()
        self._used = time.monotonic()

    def _drain(self) -> None:
        try:
            while self._pending:
                reply = self._read()
                self._pending -= 1
                if isinstance(reply, ResponseError | hiredis.ReplyError):
                    log.error("bot: a Redis script sent without waiting failed: %s", reply)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("bot: Redis connection lost before a sent script was confirmed (%s)", exc)
            self.reset()

    def _read(self) -> Any:
        """The next reply (an error reply is returned, not raised)."""
        sock = self._sock
        if sock is None:  # the in-process store
            try:
                return self._conn.read_response()
            except ResponseError as exc:
                return exc
        reader, buf = self._reader, self._buf
        try:
            reply = reader.gets()
            while reply is False:
                n = sock.recv_into(buf)
                if not n:
                    raise redis.ConnectionError("Redis closed the connection")
                reader.feed(buf, 0, n)
                reply = reader.gets()
        except (BlockingIOError, TimeoutError) as exc:  # SO_RCVTIMEO, or Python's timeout on TLS
            raise redis.TimeoutError("Timeout reading from Redis") from exc
        except (OSError, hiredis.ProtocolError) as exc:
            raise redis.ConnectionError(f"Error reading from Redis: {exc}") from exc
        return reply

    def _write(self, *command: Any) -> None:
        sock = self._sock
        try:
            if sock is None:
                self._conn.send_command(*command)
            else:
                sock.sendall(hiredis.pack_command(command))
        except (BlockingIOError, TimeoutError) as exc:
            raise redis.TimeoutError("Timeout writing to Redis") from exc
        except OSError as exc:
            raise redis.ConnectionError(f"Error writing to Redis: {exc}") from exc

    def call(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """Run ``script`` and return its reply (EVALSHA; EVAL when Redis lacks it)."""
        self._ready()
        try:
            self._write("EVALSHA", script.sha, len(keys), *keys, *args)
            reply = self._read()
            if isinstance(reply, NoScriptError) or (
                isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT")
            ):
                self._write("EVAL", script.source, len(keys), *keys, *args)
                reply = self._read()
        except (redis.ConnectionError, redis.TimeoutError):
            self.reset()
            raise
        if isinstance(reply, ResponseError):
            raise reply
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
        return reply

    def send(self, script: Script, keys: list[str], args: list[Any]) -> None:
        """Send ``script`` without waiting for its reply (EVAL: never "no such script")."""
        self._ready()
        try:
            self._write("EVAL", script.source, len(keys), *keys, *args)
        except (redis.ConnectionError, redis.TimeoutError):
            self.reset()
            raise
        self._pending += 1


def _closed(sock: socket.socket | None) -> bool:
    """True if the server closed an idle connection (readable with nothing expected)."""
    if sock is None:
        return False  # the in-process store
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


_local = threading.local()
_generation = [0]  # bumped in a child after fork(): links made before belong to the parent
os.register_at_fork(after_in_child=lambda: _generation.__setitem__(0, _generation[0] + 1))


def thread_link(client: redis.Redis) -> Link:
    """The ``Link`` of this thread for ``client``'s connection pool."""
    links = _local.__dict__.setdefault("links", {})
    link = links.get(id(client.connection_pool))
    if link is None or link.pool is not client.connection_pool or link.generation != _generation[0]:
        link = links[id(client.connection_pool)] = Link(client)
    return link
