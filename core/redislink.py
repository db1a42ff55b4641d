"""One Redis connection per thread for hot paths that make one round trip per request.

The client's own Connection connects, authenticates, selects the database and speaks
TLS; the hot path then writes the command packed by hiredis straight to its socket and
parses the reply with a hiredis Reader, skipping the client's pool checkout, health
check and parser bookkeeping per call. On a plain TCP or Unix socket the timeout moves
into the kernel (``SO_RCVTIMEO``/``SO_SNDTIMEO``) and the socket becomes blocking:
CPython polls before every send and receive on a socket that has a Python-level
timeout, which costs two more system calls and two more GIL hand-offs per scan.

A socket error or timeout drops the link (the connection is disconnected and given
back to the pool) and the command goes once through the normal client path with its
retries. Clients without a real socket (the in-process store) use the Connection's own
send/read.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:
    import hiredis
except ImportError:  # pragma: no cover - hiredis is in requirements.txt
    hiredis = None

_local = threading.local()
_pid = [os.getpid()]  # kept current across fork() without a getpid() system call per scan
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def _kernel_timeout(sock: socket.socket) -> None:
    timeout = sock.gettimeout()
    if not timeout or isinstance(sock, ssl.SSLSocket):  # TLS reads keep Python's timeout
        return
    try:
        tv = struct.pack("@ll", int(timeout), int(timeout % 1 * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    except (OSError, struct.error):
        return
    sock.settimeout(None)  # a timed-out call now raises BlockingIOError (EAGAIN)


class Link:
    def __init__(self, redis) -> None:
        self.owner, self.pid = redis, _pid[0]
        self.conn = redis.connection_pool.get_connection()
        self.sock = None
        self._attach()

    def _attach(self) -> None:
        sock = getattr(self.conn, "_sock", None)
        self.sock = sock if hiredis is not None and isinstance(sock, socket.socket) else None
        if self.sock is not None:
            _kernel_timeout(self.sock)
            self.reader = hiredis.Reader()
            self.buf = bytearray(4096)

    def call(self, command: tuple):
        sock = self.sock
        if sock is None or self.conn._sock is not sock:  # no socket, or reconnected meanwhile
            self.conn.send_command(*command)
            reply = self.conn.read_response()
            self._attach()
            return reply
        sock.sendall(hiredis.pack_command(command))
        reader, buf = self.reader, self.buf
        reply = False
        while reply is False:
            n = sock.recv_into(buf)
            if not n:
                raise RedisConnectionError("Redis closed the connection")
            reader.feed(buf, 0, n)
            reply = reader.gets()
        if isinstance(reply, hiredis.ReplyError):
            message = str(reply)
            raise NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)
        return reply

    def drop(self) -> None:
        self.conn.disconnect()
        self.owner.connection_pool.release(self.conn)


def call(redis, command: tuple):
    """Send ``command`` on this thread's link to ``redis`` and return the reply."""
    link = getattr(_local, "link", None)
    if link is None or link.owner is not redis or link.pid != _pid[0]:
        try:
            link = Link(redis)
        except (AttributeError, TypeError):  # a client without a plain pool
            return redis.execute_command(*command)
        _local.link = link
    try:
        return link.call(command)
    except (RedisConnectionError, RedisTimeoutError, OSError):
        _local.link = None
        link.drop()
        return redis.execute_command(*command)
