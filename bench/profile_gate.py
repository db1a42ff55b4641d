"""In-process profile of ``POST /api/v1/passes/gate/scan`` (PostgreSQL + real Redis).

1. Counts, for one scan of a known pass, the Redis commands and round trips (must be
   one EVALSHA) and the SQL statements (must be none).
2. CPU per request calling the WSGI app directly (no server, no client), beside a bare
   Flask JSON endpoint called the same way, alternating rounds; min and median.
3. Redis CPU per scan script call (``INFO commandstats`` of EVALSHA, before and after the
   timed rounds: Redis shares the machine's cores, so its CPU counts too; EVALSHA calls
   other clients make meanwhile are counted as well).
4. A cProfile of the scans (CPU time), our modules by cumulative time.
With ``--floor``, 2. also measures the same route with the service replaced by a fixed
answer, and by a fixed answer after one Redis PING: what the framework and one round
trip cost before the scan does anything.

No gunicorn and no load generator, so the numbers barely depend on what else runs on
the machine. ``BENCH_PG`` / ``BENCH_REDIS`` as for ``make bench``:
``BENCH_REDIS=redis://127.0.0.1:6379/9 .venv/bin/python -m bench.profile_gate [--top 30]``
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

from redis.connection import AbstractConnection
from sqlalchemy import event

SCAN = "/api/v1/passes/gate/scan"


def bodies(tokens: list[str], count: int, start: int = 0) -> list[dict]:
    """Scans of distinct passes, alternating a round of entries with a round of exits."""
    n = len(tokens)
    return [
        {
            "qr": tokens[k % n],
            "nonce": uuid.uuid4().hex,
            "scanned_at": datetime.now(UTC).isoformat(),
            "direction": "in" if (k // n) % 2 == 0 else "out",
        }
        for k in range(start, start + count)
    ]


def environs(path: str, items: list[dict | None], headers: dict[str, str]) -> list[dict]:
    from werkzeug.test import EnvironBuilder

    out = []
    for b in items:
        method = "GET" if b is None else "POST"
        out.append(EnvironBuilder(path=path, method=method, json=b, headers=headers).get_environ())
    return out


def wsgi_cpu(app, envs: list[dict]) -> float:
    """CPU microseconds per request, calling the WSGI app directly."""

    def start_response(status, headers, exc_info=None):
        return None

    c = time.process_time()
    for environ in envs:
        for _chunk in app(environ, start_response):
            pass
    return (time.process_time() - c) / len(envs) * 1e6


def bare_json_app():
    """The bare Flask JSON endpoint the profiles compare against (``GET /json``)."""
    from flask import Flask, jsonify

    bare = Flask("bare")

    @bare.get("/json")
    def bare_json():
        return jsonify({"ok": True, "data": {"pong": 1}})

    return bare


def print_cpu_profile(
    app, envs: list[dict], *, tottime: bool, top: int, ours: str, callers: str | None = None
):
    """cProfile (CPU time, not the wait for Redis) of calling ``app`` on ``envs``: every
    function by own time, or the modules matching ``ours`` by cumulative time."""
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    wsgi_cpu(app, envs)
    profile.disable()
    stats = pstats.Stats(profile)
    if tottime:
        stats.sort_stats("tottime").print_stats(top)
    else:
        stats.sort_stats("cumulative").print_stats(ours, top)
    if callers:
        stats.print_callers(callers)


class Counters:
    """Redis commands / writes to the socket and SQL statements while ``active``."""

    def __init__(self, engine) -> None:
        import socket

        self.redis: Counter = Counter()
        self.sql: list[str] = []
        self.active = False
        send_command, sendall = AbstractConnection.send_command, socket.socket.sendall

        def counted_send_command(conn, *args, **kwargs):
            if self.active:
                self.redis[str(args[0]).upper()] += 1
            return send_command(conn, *args, **kwargs)

        AbstractConnection.send_command = counted_send_command
        self._socket_class = type("CountedSocket", (socket.socket,), {"__slots__": ()})

        def counted_sendall(sock, data, *args):
            if self.active:
                self.redis["socket writes"] += 1
                head = bytes(data[:64]).split(b"\r\n")
                if len(head) > 2 and head[0].startswith(b"*"):
                    self.redis[head[2].decode().upper()] += 1
            return sendall(sock, data, *args)

        self._socket_class.sendall = counted_sendall

        @event.listens_for(engine, "before_cursor_execute")
        def _sql(conn, cursor, statement, params, context, executemany):
            if self.active:
                self.sql.append(statement.split()[0])

    def watch_scan_link(self) -> None:
        """Count what the hot path writes on its own socket (it bypasses the client)."""
        from core import redislink as scanlink

        link = getattr(scanlink._local, "link", None)
        if link is not None and link.sock is not None:
            link.sock.__class__ = self._socket_class


def evalsha_stats(redis) -> tuple[int, int]:
    """(calls, usec) of EVALSHA so far, from ``INFO commandstats``."""
    stats = redis.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def floor_cpu(app, redis, envs: list[dict], *, ping: bool) -> float:
    """:func:`wsgi_cpu` of the scan route with the service replaced by a fixed answer
    (after one PING on the hot path's link when ``ping``)."""
    from core import redislink
    from services.passes import gate

    real, body = gate.check_json, b'{"ok":true,"data":{}}'
    gate.check_json = lambda *a, **k: (redislink.call(redis, ("PING",)), body)[1] if ping else body
    try:
        return wsgi_cpu(app, envs)
    finally:
        gate.check_json = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--passes", type=int, default=200)
    parser.add_argument("--tottime", action="store_true", help="every function by own time")
    parser.add_argument("--floor", action="store_true", help="also the route without the scan's work")
    args = parser.parse_args()

    from bench.bench_gate import ENV_KEYS, seed
    from bench.harness import app_env, bench_database
    from core.app import create_app

    with bench_database() as url:
        env = {k: v for k, v in app_env(url).items() if k in ENV_KEYS}
        device_token, tokens = seed(env, args.passes)
        app = create_app(env)
        headers = {"Authorization": f"Bearer {device_token}"}
        counters = Counters(app.extensions["zhizhi"].db.engine)
        start = 0

        def next_envs(n: int) -> list[dict]:
            nonlocal start
            start += n
            return environs(SCAN, bodies(tokens, n, start - n), headers)

        wsgi_cpu(app, next_envs(2 * len(tokens)))  # warm: contexts, verified tokens, summaries
        counters.watch_scan_link()
        client = app.test_client()
        one = bodies(tokens, 1, start)[0]
        start += 1
        counters.active = True
        answer = client.post(SCAN, json=one, headers=headers).get_json()["data"]
        counters.active = False
        print(f"one scan of a known pass: {answer['result']}")
        print(f"  redis: {dict(counters.redis)}")
        print(f"  sql statements: {counters.sql or 0}")

        bare = bare_json_app()
        gate_us, bare_us = [], []
        floors: dict[str, list[float]] = {}
        if args.floor:
            floors = {"fixed answer": [], "fixed answer after a PING": []}
        redis = app.extensions["zhizhi"].redis
        before = evalsha_stats(redis)
        for _ in range(args.rounds):
            gate_us.append(wsgi_cpu(app, next_envs(args.scans)))
            bare_us.append(wsgi_cpu(bare, environs("/json", [None] * args.scans, {})))
            for label, xs in floors.items():
                xs.append(floor_cpu(app, redis, next_envs(args.scans), ping="PING" in label))
        calls, usec = (a - b for a, b in zip(evalsha_stats(redis), before, strict=True))
        for label, xs in (("gate scan", gate_us), ("bare JSON", bare_us), *floors.items()):
            print(f"direct WSGI CPU, {label}: min {min(xs):.0f} us, median {statistics.median(xs):.0f} us")
        if calls > 0:
            print(f"Redis CPU per scan script: {usec / calls:.1f} us ({calls} EVALSHA calls)")

        print_cpu_profile(
            app,
            next_envs(args.scans),
            tottime=args.tottime,
            top=args.top,
            ours=r"/(core|services|miniapp_api)/",
        )
        app.extensions["zhizhi"].db.dispose()


if __name__ == "__main__":
    main()
