"""Gate-check throughput (gunicorn gthread, PostgreSQL + Redis) against a bare Flask JSON
endpoint served the same way in the same run; then offline verifications per second
per core beside Ed25519's raw verify rate.

The online scans are real: distinct passes, alternating entry/exit at a two-way gate,
a fresh nonce per request, a bearer token of a gate device account. Afterwards the
passage stream is flushed and the number of passages in PostgreSQL is compared with
the number of accepted scans (none may be lost).

Run (needs both services; uses its own database, dropped at the end):
``DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 \\
  .venv/bin/python bench/bench_gate.py [--passes 300] [--seconds 8] [--connections 16]``
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _create_database(admin_url: str) -> str:
    from sqlalchemy import create_engine, text

    base = admin_url.replace("postgresql://", "postgresql+psycopg://", 1).rpartition("/")[0]
    name = f"zz_bench_{os.getpid()}"
    engine = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{base}/{name}"


def _drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    base, _, name = url.rpartition("/")
    engine = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def seed(env: dict[str, str], n_passes: int) -> tuple[str, list[str]]:
    """An event, a two-way outer gate with its device token, n approved passes."""
    from datetime import timedelta

    from core.app import create_app
    from core.auth import load_actor
    from core.migrate import upgrade
    from services.auth import issue_token
    from services.passes import applications, events
    from tests.helpers import make_person, valid_id_number

    app = create_app(env)
    upgrade(env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
    app.extensions["zhizhi"].redis.delete(*app.extensions["zhizhi"].redis.keys("pz:*") or ["_"])
    kek = app.extensions["zhizhi"].settings.signing_kek
    now = datetime.now(UTC)
    with app.app_context(), app.extensions["zhizhi"].db.session() as s:
        officer = load_actor(s, make_person(s, "officer").id)
        zones = [events.ZoneSpec(1, "外围区"), events.ZoneSpec(2, "管控区"), events.ZoneSpec(3, "核心区")]
        event = events.create_event(
            s, officer, name="基准测试活动", zones=zones, kek=kek, policy={"min_lead_hours": 0},
            starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=2),
        )  # fmt: skip
        device = make_person(s, "gate")
        events.add_gate(
            s, officer, event.id, name="东门", ring=1, direction="both", device_person_id=device.id
        )
        device_token = issue_token(s, device, "bench", 86400).token
        citizen = load_actor(s, make_person(s, "citizen").id)
        tokens = []
        day = now.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).date()
        for i in range(n_passes):
            data = applications.ApplicationInput(
                person=applications.PersonInput("张三", valid_id_number(10_000 + i), "13812345678"),
                purpose="基准", host_unit="组委会", visit_from=day, visit_to=day, ring=1,
            )  # fmt: skip
            app_row = applications.create(s, citizen, event.id, data, kek=kek)
            tokens.append(applications.issuance.active_pass(s, app_row.id).token)
    app.extensions["zhizhi"].db.dispose()
    return device_token, tokens


class Load:
    """Keep-alive HTTP/1.1 clients on raw sockets (cheap, so the server is what we measure)."""

    def __init__(self, port: int, device_token: str, tokens: list[str]) -> None:
        self.port, self.device_token, self.tokens = port, device_token, tokens
        self.counter = 0
        self.lock = threading.Lock()
        self.ok = self.errors = 0
        self.reasons: dict[str, int] = {}

    def _next(self) -> bytes:
        with self.lock:
            k = self.counter
            self.counter += 1
        n = len(self.tokens)
        direction = "in" if (k // n) % 2 == 0 else "out"
        scan = {"qr": self.tokens[k % n], "nonce": uuid.uuid4().hex, "direction": direction}
        body = json.dumps({**scan, "scanned_at": datetime.now(UTC).isoformat()}).encode()
        head = (
            "POST /api/v1/passes/gate/scan HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self.device_token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    @staticmethod
    def _read(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes]:
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = int(
            next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length"))
        )
        while len(rest) < length:
            rest += sock.recv(65536)
        return rest[:length], rest[length:]

    def worker(self, until: float, record: bool) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port))
        buf = b""
        done = 0
        reasons: dict[str, int] = {}
        while time.perf_counter() < until:
            sock.sendall(self._next())
            body, buf = self._read(sock, buf)
            done += 1
            if record:
                reason = json.loads(body)["data"]["reason"] or "ok"
                reasons[reason] = reasons.get(reason, 0) + 1
        sock.close()
        with self.lock:
            self.ok += done
            for k, v in reasons.items():
                self.reasons[k] = self.reasons.get(k, 0) + v

    def run(self, seconds: float, connections: int, record: bool = False) -> float:
        self.ok = 0
        self.reasons = {}
        until = time.perf_counter() + seconds
        threads = [threading.Thread(target=self.worker, args=(until, record)) for _ in range(connections)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.ok / (time.perf_counter() - start)


def serve(spec: str, env: dict[str, str], workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    cmd = [
        str(ROOT / ".venv/bin/gunicorn"), "-k", "gthread", "-w", str(workers), "--threads", str(threads),
        "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--keep-alive", "30", spec,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"gunicorn {spec} did not start")


def online(args, env: dict[str, str]) -> None:
    """Both servers run side by side; measurement windows alternate between them and
    the best window of each counts, so load from other processes on the machine
    hits both sides alike."""
    device_token, tokens = seed(env, args.passes)
    specs = {"bare Flask JSON endpoint": "bench.gate_apps:bare()", "gate check": "bench.gate_apps:full()"}
    servers = {label: serve(spec, env, args.workers, args.threads) for label, spec in specs.items()}
    results: dict[str, float] = dict.fromkeys(specs, 0.0)
    reasons: dict[str, int] = {}
    try:
        loads = {label: Load(port, device_token, tokens) for label, (_proc, port) in servers.items()}
        for load in loads.values():
            load.run(2.0, args.connections)  # warm-up: caches, pools, verified tokens
        for _ in range(args.rounds):
            for label, load in loads.items():
                rate = load.run(args.seconds, args.connections, record=label == "gate check")
                results[label] = max(results[label], rate)
                if label == "gate check":
                    for k, v in load.reasons.items():
                        reasons[k] = reasons.get(k, 0) + v
    finally:
        for proc, _port in servers.values():
            proc.terminate()
            proc.wait(10)
    for label, rate in results.items():
        print(f"{label:28s} {rate:9.0f} req/s  (best of {args.rounds} windows of {args.seconds:g} s)")
    ratio = results["gate check"] / results["bare Flask JSON endpoint"]
    print(f"{'ratio gate / bare':28s} {ratio:9.2f}   (target >= 0.60)")
    print(f"gate answers in measured windows: {reasons}")
    _check_no_passage_lost(env)


def _check_no_passage_lost(env: dict[str, str]) -> None:
    from sqlalchemy import func, select

    from core.app import create_app
    from jobs.passes import flush_passages
    from models.passes import Passage, ScanRefusal

    app = create_app(env)
    start = time.perf_counter()
    moved = flush_passages(app)
    took = time.perf_counter() - start
    with app.extensions["zhizhi"].db.session() as s:
        passages = s.scalar(select(func.count()).select_from(Passage))
        refused = s.scalar(select(func.count()).select_from(ScanRefusal))
    print(f"flushed {moved} stream entries in {took:.2f}s: {passages} passages + {refused} refusals stored")
    app.extensions["zhizhi"].db.dispose()


def offline(n: int) -> tuple[float, float, float]:
    """Offline verification on one core: first sight of each token (signature checked)
    and a repeated token (verified-token cache), beside raw Ed25519 verify."""
    from core import signing
    from services.passes import checks

    ring = signing.KeyRing([signing.generate_key()])
    tokens = [
        signing.encode_token(
            kind=1, object_id=i, scope_id=1, zone=1, not_before=0, not_after=2**31, ring=ring
        )
        for i in range(n)
    ]
    claims, signed, sig = signing.parse_token(tokens[0])
    key = ring.verifier(claims.kid)
    t = time.perf_counter()
    for _ in range(n):
        key.verify(sig, signed)
    raw = n / (time.perf_counter() - t)
    cache = checks.VerifiedTokens(n + 1)
    t = time.perf_counter()
    for tok in tokens:
        c = checks.verify_pass_token(tok, ring.verifier, 1, cache)
        checks.after_revocation(c, gate_ring=1, now=1_800_000_000, leeway=60, holder_read=None)
    first = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for tok in tokens:
        c = checks.verify_pass_token(tok, ring.verifier, 1, cache)
        checks.after_revocation(c, gate_ring=1, now=1_800_000_000, leeway=60, holder_read=None)
    repeat = n / (time.perf_counter() - t)
    print(f"{'raw Ed25519 verify':28s} {raw:9.0f} /s per core")
    print(f"{'offline verify, new token':28s} {first:9.0f} /s per core  ({first / raw:.2f} of raw)")
    print(f"{'offline verify, seen token':28s} {repeat:9.0f} /s per core")
    return raw, first, repeat


# --- `make bench` (bench/__main__.py) entry point -------------------------------------


def _scan_requests(device_token: str, tokens: list[str], count: int, start: int = 0) -> list[bytes]:
    from bench import loadgen

    headers = {"Authorization": f"Bearer {device_token}"}
    out = []
    for k in range(start, start + count):
        n = len(tokens)
        body = {
            "qr": tokens[k % n],
            "nonce": uuid.uuid4().hex,
            "scanned_at": datetime.now(UTC).isoformat(),
            "direction": "in" if (k // n) % 2 == 0 else "out",
        }
        out.append(loadgen.build_request("POST", "/api/v1/passes/gate/scan", body, headers))
    return out


def run(database_url: str, baselines: dict) -> list:
    """Rows for the shared table: online gate check vs the bare JSON baseline, passages
    kept, offline verification vs raw Ed25519."""
    from bench import loadgen
    from bench.harness import Row, app_env, gunicorn

    env = {k: v for k, v in app_env(database_url).items() if k in ENV_KEYS}
    device_token, tokens = seed(env, 300)
    warm = _scan_requests(device_token, tokens, 600)
    measured = _scan_requests(device_token, tokens, 6000, start=600)
    with gunicorn("wsgi:app", app_env(database_url)) as port:
        loadgen.run(port, lambda n: warm[n], requests=len(warm))
        res = loadgen.run(port, lambda n: measured[n], requests=len(measured))
    base = baselines["json"].rps
    ratio = res.rps / base if base else 0.0
    moved, passages, refused = _flush_counts(env)
    raw, first, repeat = offline(3000)
    latency = f"p50 {res.median:.1f} ms, p99 {res.pct(99):.1f} ms, statuses {res.statuses}"
    kept = f"{moved} stream entries flushed: {passages} passages + {refused} refusals (none lost if equal)"
    return [
        Row("gate check POST /passes/gate/scan", res.rps, "req/s", "bare JSON", base, ">= 0.60",
            ratio >= 0.60, note=latency),
        Row("gate passages kept (stream -> PostgreSQL)", passages + refused, "rows", note=kept),
        Row("offline verify, new token (1 core)", first, "/s", "raw Ed25519", raw),
        Row("offline verify, seen token (1 core)", repeat, "/s", "raw Ed25519", raw),
    ]  # fmt: skip


ENV_KEYS = {"DATABASE_URL", "REDIS_URL", "ZHIZHI_ENV", "INSTANCE_PATH", "QUEUE_PREFIX", "AUTH_CACHE_SECONDS"}


def _flush_counts(env: dict[str, str]) -> tuple[int, int, int]:
    from sqlalchemy import func, select

    from core.app import create_app
    from jobs.passes import flush_passages
    from models.passes import Passage, ScanRefusal

    app = create_app(env)
    moved = flush_passages(app)
    with app.extensions["zhizhi"].db.session() as s:
        passages = s.scalar(select(func.count()).select_from(Passage))
        refused = s.scalar(select(func.count()).select_from(ScanRefusal))
    app.extensions["zhizhi"].db.dispose()
    return moved, passages, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--offline-n", type=int, default=5000)
    parser.add_argument("--offline-only", action="store_true")
    args = parser.parse_args()
    offline(args.offline_n)
    if args.offline_only:
        return
    admin, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not admin.startswith("postgresql") or not redis_url:
        sys.exit("the online part needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    url = _create_database(admin)
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "ZHIZHI_ENV": "development"}
    env["INSTANCE_PATH"] = "/tmp/zz_bench_instance"
    try:
        online(args, env)
    finally:
        _drop_database(url)


if __name__ == "__main__":
    main()
