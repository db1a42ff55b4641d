"""Shared benchmark plumbing: a PostgreSQL database per run, gunicorn processes, results.

Benchmarks print ratios against a baseline measured in the same run with the same server
settings, never absolute pass/fail timings.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12")
GUNICORN_WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
GUNICORN_THREADS = int(os.environ.get("BENCH_THREADS", "4"))


@dataclass
class Row:
    name: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"zz_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(
        f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://', 1)}/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_SERVER}/{name}"
    try:
        from core.migrate import upgrade

        upgrade(url.replace("postgresql://", "postgresql+psycopg://", 1))
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ZHIZHI_ENV": "testing",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS,
        "QUEUE_PREFIX": f"bench{os.getpid()}:",
        "AUTH_CACHE_SECONDS": "30",
        "INSTANCE_PATH": str(ROOT / "instance" / "bench"),
    }
    env.update(extra)
    return env


@contextmanager
def gunicorn(app_spec: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """Serve ``app_spec`` with gthread workers on a free loopback port."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        "gthread",
        "-w",
        str(GUNICORN_WORKERS),
        "--threads",
        str(GUNICORN_THREADS),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--keep-alive",
        "30",
        app_spec,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env or dict(os.environ))
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"gunicorn for {app_spec} exited with {proc.returncode}") from None
                time.sleep(0.2)
        time.sleep(0.5)  # let every worker finish importing
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def print_table(rows: list[Row]) -> None:
    header = f"{'benchmark':42} {'value':>11} {'unit':7} {'baseline':>10} {'ratio':>6}  {'target':16} met"
    print(header)
    print("-" * len(header))
    for r in rows:
        base = f"{r.baseline_value:,.0f}" if r.baseline_value else "-"
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        met = {True: "yes", False: "NO", None: "-"}[r.met]
        value = f"{r.value:>11,.1f} {r.unit[:7]:7}"
        print(f"{r.name[:42]:42} {value} {base:>10} {ratio:>6}  {r.target[:16]:16} {met}")
        if r.note:
            print(f"    {r.note}")


def save(rows: list[Row], label: str = "bench") -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{label}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    payload = [{**asdict(r), "ratio": r.ratio} for r in rows]
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2))
    return path


@dataclass
class Paired:
    ratios: list[float]
    rps: list[float]
    bare_rps: list[float]
    latencies_ms: list[float]
    requests: int = 0  # sent to the product over all rounds
    bare_requests: int = 0  # sent to the bare baseline over all rounds

    @property
    def ratio(self) -> float:
        import statistics

        return statistics.median(self.ratios)

    @property
    def median_rps(self) -> float:
        import statistics

        return statistics.median(self.rps)

    def pct(self, p: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(p / 100 * len(data)))] if data else 0.0

    def describe(self) -> str:
        return (
            f"median of {len(self.ratios)} interleaved rounds; ratios "
            + " ".join(f"{x:.2f}" for x in self.ratios)
            + "; bare req/s per round "
            + " ".join(f"{x:.0f}" for x in self.bare_rps)
            + f"; p50 {self.pct(50):.1f} ms, p99 {self.pct(99):.1f} ms"
        )


def paired(
    bare_port: int,
    bare_request: bytes,
    port: int,
    rounds: list[list[bytes]],
    *,
    connections: int = 16,
    check: Callable[[int, bytes], None] | None = None,
    bare_factor: float = 2.0,
) -> Paired:
    """Alternate a round against the bare baseline with a round of the product (one
    list of distinct requests per round), so load from elsewhere on the machine hits
    both alike; the ratio reported is the median of the per-round ratios. A bare round
    sends ``bare_factor`` times the product round's requests: the bare endpoint answers
    several times faster, and a round of a fraction of a second measures mostly noise."""
    from bench import loadgen

    out = Paired([], [], [], [])
    for chunk in rounds:
        n_bare = int(len(chunk) * bare_factor)
        bare = loadgen.run(bare_port, lambda n: bare_request, requests=n_bare, connections=connections)
        res = loadgen.run(
            port, lambda n, c=chunk: c[n], requests=len(chunk), connections=connections, check=check
        )
        out.ratios.append(res.rps / bare.rps)
        out.rps.append(res.rps)
        out.bare_rps.append(bare.rps)
        out.latencies_ms.extend(res.latencies_ms)
        out.requests += res.requests
        out.bare_requests += bare.requests
    return out


def server_cpu(port: int) -> float:
    """CPU seconds (user + system) used so far by the gunicorn serving ``port``: its
    master and workers (Linux /proc)."""
    import os

    from bench.loadgen import gunicorn_stats

    ticks = sum(int(stat[11]) + int(stat[12]) for stat in gunicorn_stats(port).values())  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class Cpu:
    """Server CPU per request of both sides over the measured rounds: unlike throughput,
    it does not depend on what else the machine runs (Redis' own CPU is not included)."""

    def __init__(self, bare_port: int, port: int) -> None:
        self.ports = (bare_port, port)
        self.start = [server_cpu(p) for p in self.ports]

    def per_request_us(self, bare_requests: int, requests: int) -> tuple[float, float]:
        used = [server_cpu(p) - s for p, s in zip(self.ports, self.start, strict=True)]
        return used[0] / bare_requests * 1e6, used[1] / requests * 1e6
