"""Safe-mode WeChat text messages per second through gunicorn, against a bare Flask
endpoint that answers ``success``, measured in the same run with the same client.

Both servers run under the same gunicorn settings (gthread). The client processes post
pre-built, signed, AES-encrypted text messages ("帮助") from many users over keep-alive
connections; every message has its own MsgId, so each one is verified, decrypted,
parsed, deduplicated (one Redis round trip to claim + load state, one to store), routed
and answered with an encrypted passive reply. Latency is measured per request at the
client (a request's full handling time, queueing included).

Run: ``REDIS_URL=redis://127.0.0.1:6379/7 .venv/bin/python bench/bench_bot.py
[--seconds 8] [--clients 8] [--workers 2] [--threads 4] [--database-url ...]``
Without ``--database-url`` a migrated SQLite file is used (identity lookups hit it only
once per user per 5 minutes; the conversation state caches them).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.crypto import MessageCrypto, sha1_signature  # noqa: E402

TOKEN, APP_ID = "benchtoken", "wx00000000bench001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

BARE_APP = """
from flask import Flask
app = Flask(__name__)

@app.post("/bot/wechat")
def wechat():
    return "success"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_messages(n: int, users: int, seed: int, client_no: int = 0) -> list[tuple[str, bytes]]:
    crypto = MessageCrypto(TOKEN, AES_KEY, APP_ID)
    now = int(time.time())
    out = []
    for i in range(n):
        openid = f"o_bench_{client_no}_{i % users}"  # the same users in warm-up and run
        ts, nonce = str(now), str(secrets.randbelow(10**9))
        inner = (
            f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
            f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[帮助]]></Content><MsgId>{seed * 10_000_000 + i}</MsgId></xml>"
        )
        encrypt = crypto.encrypt(inner)
        sig = sha1_signature(TOKEN, ts, nonce, encrypt)
        query = (
            f"/bot/wechat?timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={sig}&openid={openid}"
        )
        body = f"<xml><ToUserName>gh_bench</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        out.append((query, body.encode()))
    return out


def client(port: int, messages: list[tuple[str, bytes]], seconds: float, start_at: float, q) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    errors = 0
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline and i < len(messages):
        path, body = messages[i]
        i += 1
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "text/xml"})
            res = conn.getresponse()
            data = res.read()
            if res.status != 200 or not data:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies.append(time.perf_counter() - t0)
    q.put((len(latencies), errors, latencies, i >= len(messages)))


def run_load(port: int, clients: int, seconds: float, per_client: int, users: int, tag: int) -> dict:
    batches = [build_messages(per_client, users, tag * 100 + c, c) for c in range(clients)]
    q: mp.Queue = mp.Queue()
    start_at = time.time() + 0.5
    procs = [mp.Process(target=client, args=(port, b, seconds, start_at, q)) for b in batches]
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    count = sum(r[0] for r in results)
    lat = sorted(x for r in results for x in r[2])
    if any(r[3] for r in results):
        print("  warning: a client ran out of pre-built messages; raise --per-client")
    return {
        "rps": count / seconds,
        "errors": sum(r[1] for r in results),
        "p50": statistics.median(lat) * 1000 if lat else 0.0,
        "p99": lat[int(len(lat) * 0.99) - 1] * 1000 if lat else 0.0,
    }


def start_gunicorn(target: str, cwd: Path, env: dict, args) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(args.workers),
           "--threads", str(args.threads), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
           "--keep-alive", "30", target]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=cwd, env=env)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"gunicorn {target} did not start")


def app_env(tmp: Path, args) -> dict:
    env = dict(os.environ)
    env.update(
        ZHIZHI_ENV="testing",
        INSTANCE_PATH=str(tmp / "instance"),
        DATABASE_URL=args.database_url or f"sqlite:///{tmp / 'bench.db'}",
        WECHAT_TOKEN=TOKEN,
        WECHAT_APP_ID=APP_ID,
        WECHAT_APP_SECRET="bench-secret",  # noqa: S106 (not a real secret)
        WECHAT_AES_KEY=AES_KEY,
        QUEUE_PREFIX="bench:",
    )
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    env.pop("PYTHONPATH", None)
    return env


def prepare(env: dict) -> None:
    code = "from core.migrate import upgrade; from core.config import load_settings; import os; " \
           "upgrade(load_settings(dict(os.environ)).database_url)"  # fmt: skip
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--users", type=int, default=25, help="distinct openids per client")
    ap.add_argument("--per-client", type=int, default=12000)
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    args = ap.parse_args()
    if args.database_url and args.database_url.startswith("postgresql://"):
        args.database_url = "postgresql+psycopg://" + args.database_url[len("postgresql://") :]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "bare.py").write_text(BARE_APP)
        env = app_env(tmp, args)
        prepare(env)
        bare, bare_port = start_gunicorn("bare:app", tmp, env, args)
        ours, our_port = start_gunicorn("wsgi:app", ROOT, env, args)
        try:
            run_load(our_port, args.clients, 3.0, 3000, args.users, tag=9)  # warm-up: imports, who-cache
            run_load(bare_port, args.clients, 1.5, 3000, args.users, tag=8)
            base = run_load(bare_port, args.clients, args.seconds, args.per_client, args.users, tag=1)
            bot = run_load(our_port, args.clients, args.seconds, args.per_client, args.users, tag=2)
        finally:
            for p in (bare, ours):
                p.terminate()
                p.wait(10)
    store = f"Redis {args.redis_url}" if args.redis_url else "in-process store (per worker!)"
    print(f"gunicorn gthread -w {args.workers} --threads {args.threads}; {args.clients} clients; {store}")
    for label, r, unit in (
        ("bare Flask 'success'", base, "req/s"),
        ("safe-mode text -> reply", bot, "msg/s"),
    ):
        print(
            f"{label:24s}: {r['rps']:7.0f} {unit}  p50 {r['p50']:6.2f} ms  "
            f"p99 {r['p99']:6.2f} ms  errors {r['errors']}"
        )
    print(f"ratio bot / bare        : {bot['rps'] / base['rps']:.0%}  (target >= 40%)")
    print(f"p99 handling time       : {bot['p99']:.1f} ms  (target <= 100 ms; WeChat waits 5 s)")


if __name__ == "__main__":
    main()
