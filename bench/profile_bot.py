"""In-process profile of ``POST /bot/wechat`` in safe mode (PostgreSQL + real Redis).

1. Counts, per message of bench.bench_bot's mix (a steady stream of them, so the reply
   of a script sent without waiting is read during the next message, as in service):
   Redis commands by name, socket writes and reads, round trips (see Counters), and
   SQL statements (none).
2. CPU per message calling the WSGI app directly (no server, no client), beside the bare
   Flask ``success`` endpoint (bench.baseline) called the same way, alternating rounds;
   min and median.
3. ``--profile``: a cProfile of the messages (CPU time), our modules by cumulative time
   (``--tottime``: every function by own time).

No gunicorn and no load generator, so the numbers barely depend on what else runs on
the machine. Every answer is decrypted and checked as in bench.bench_bot, after timing.
``BENCH_PG`` / ``BENCH_REDIS`` as for ``make bench``:
``BENCH_REDIS=redis://127.0.0.1:6379/13 .venv/bin/python -m bench.profile_bot [--profile]``
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import time
from collections import Counter

import hiredis
from sqlalchemy import event

ENV_KEYS = {"DATABASE_URL", "REDIS_URL", "ZHIZHI_ENV", "INSTANCE_PATH", "QUEUE_PREFIX", "AUTH_CACHE_SECONDS"}


def environ(path: str, body: bytes) -> dict:
    """A POST environ shaped like gunicorn's (the body in ``wsgi.input``)."""
    path_info, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "RAW_URI": path,
        "CONTENT_TYPE": "text/xml",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_CONNECTION": "keep-alive",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def wsgi_cpu(app, envs: list[dict], answers: list | None = None) -> float:
    """CPU microseconds per request, calling the WSGI app directly."""
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    c = time.process_time()
    for env in envs:
        body = b"".join(app(env, start_response))
        if answers is not None:
            answers.append(body)
    used = time.process_time() - c
    if answers is not None:
        answers[:] = [(int(s.split()[0]), b) for s, b in zip(statuses, answers, strict=True)]
    return used / len(envs) * 1e6


class Counters:
    """What goes over Python sockets (only Redis uses them in this process) and the SQL
    statements, while ``active``. A round trip is a read after a write within one
    message: the thread needed the reply to go on. The reply of a script sent without
    waiting is read during the next message, before its first write: not one."""

    def __init__(self, engine) -> None:
        self.redis: Counter = Counter()
        self.sql: list[str] = []
        self.active = False
        self._commands: dict[int, hiredis.Reader] = {}
        self._last: dict[int, str] = {}
        cls = socket.socket
        sendall, recv, recv_into = cls.sendall, cls.recv, cls.recv_into
        counters = self

        def counted_sendall(sock, data, *args):
            if counters.active:
                fd = sock.fileno()
                counters.redis["socket writes"] += 1
                counters._last[fd] = "w"
                reader = counters._commands.setdefault(fd, hiredis.Reader())
                reader.feed(bytes(data))
                while (command := reader.gets()) is not False:
                    counters.redis[command[0].decode().upper()] += 1
            return sendall(sock, data, *args)

        def read(sock) -> None:
            if counters.active:
                fd = sock.fileno()
                counters.redis["socket reads"] += 1
                if counters._last.get(fd) == "w":
                    counters.redis["round trips"] += 1
                counters._last[fd] = "r"

        def counted_recv(sock, *args):
            read(sock)
            return recv(sock, *args)

        def counted_recv_into(sock, *args):
            read(sock)
            return recv_into(sock, *args)

        self._methods = (sendall, recv, recv_into), (counted_sendall, counted_recv, counted_recv_into)

        @event.listens_for(engine, "before_cursor_execute")
        def _sql(conn, cursor, statement, params, context, executemany):
            if self.active:
                self.sql.append(statement.split()[0])

    def run(self, app, envs: list[dict]) -> None:
        """Call ``app`` with each environ, counting per message."""
        cls, (plain, counted) = socket.socket, self._methods
        cls.sendall, cls.recv, cls.recv_into = counted
        self.active = True
        try:
            for env in envs:
                self._last.clear()
                wsgi_cpu(app, [env])
        finally:
            self.active = False
            cls.sendall, cls.recv, cls.recv_into = plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=600, help="messages counted for round trips")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one round")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--tottime", action="store_true", help="profile: every function by own time")
    parser.add_argument("--callers", help="profile: also print the callers of functions matching this")
    args = parser.parse_args()

    from bench import bench_bot as bb
    from bench.baseline import app as bare
    from bench.harness import app_env, bench_database
    from bench.profile_gate import print_cpu_profile
    from bot.crypto import MessageCrypto
    from core.app import create_app

    crypto = MessageCrypto(bb.TOKEN, bb.AES_KEY, bb.APP_ID)
    msg_base = int(time.time()) * 100_000
    with bench_database() as url:
        env = {k: v for k, v in app_env(url).items() if k in ENV_KEYS}
        env.update(WECHAT_TOKEN=bb.TOKEN, WECHAT_APP_ID=bb.APP_ID, WECHAT_AES_KEY=bb.AES_KEY)
        bb.seed(url)
        app = create_app(env)
        counters = Counters(app.extensions["zhizhi"].db.engine)
        start = 0

        def next_envs(n: int) -> list[dict]:
            nonlocal start
            now, first = int(time.time()), start
            start += n
            return [environ(*bb.message(crypto, k, msg_base, now)) for k in range(first, start)]

        answers: list = []
        wsgi_cpu(app, next_envs(bb.USERS * len(bb.SCRIPT)), answers)  # every identity cached
        bb.verify(answers)

        counters.run(app, next_envs(args.count))
        print(f"per message, over {args.count} messages of the benchmark's mix:")
        for name, n in sorted(counters.redis.items()):
            print(f"  redis {name}: {n / args.count:.2f}")
        print(f"  sql statements: {len(counters.sql) / args.count:.2f} {sorted(set(counters.sql))}")

        bot_us, bare_us = [], []
        for _ in range(args.rounds):
            envs = next_envs(args.messages)
            answers = []
            bot_us.append(wsgi_cpu(app, envs, answers))
            bb.verify(answers)
            bare_envs = [environ("/success", b"x") for _ in range(args.messages)]
            bare_us.append(wsgi_cpu(bare, bare_envs))
        for label, xs in (("bot message", bot_us), ("bare success", bare_us)):
            print(f"direct WSGI CPU, {label}: min {min(xs):.0f} us, median {statistics.median(xs):.0f} us")
        print(f"  bare/bot (median): {statistics.median(bare_us) / statistics.median(bot_us):.2f}")

        if args.profile:
            print_cpu_profile(
                app,
                next_envs(args.messages),
                tottime=args.tottime,
                top=args.top,
                ours=r"/(bot|core|services)/",
                callers=args.callers,
            )
        app.extensions["zhizhi"].db.dispose()


if __name__ == "__main__":
    main()
