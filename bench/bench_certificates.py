"""Certificate renders per second: in-process vs through RQ workers (PDF permits, PNG cards).

Each job is the whole path a domain job takes: re-read the outbox row, sign a token,
render, put into the content-addressed store, record the ``stored_documents`` row, mark
the outbox row done. "in-process" runs the rows one after another through
``jobs.runner.run_item`` (the embedded default); "rq" runs the same kind of rows through
``python -m jobs.worker --burst`` (one worker, forking a work-horse per job, warmed
parent; and ``--worker-class simple``, no fork per job), timed from the first claim to
the last ``done`` (worker start-up excluded) and also wall-clock including start-up.
Target: rq ≥ 80% of in-process for PDFs.

Needs PostgreSQL and Redis: ``DATABASE_URL=postgresql://... REDIS_URL=redis://.../N
.venv/bin/python bench/bench_certificates.py [--n 200]``. A scratch database is created
and dropped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

ROUNDS = 9


def _scratch_db(url: str) -> tuple[str, callable]:
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    base, _, admin_db = url.rpartition("/")
    name = f"zz_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{base}/{admin_db}", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return f"{base}/{name}", drop


def _add_rows(app, n: int, doc: str, start: int) -> list[int]:
    from core import outbox

    ext = app.extensions["zhizhi"]
    with ext.db.session() as s:
        ids = [outbox.add(s, "test.certificate", {"subject_id": start + i, "doc": doc}) for i in range(n)]
        s.info.clear()  # not dispatched here: each mode hands them over itself
    return ids


def _span(app, ids: list[int]) -> float:
    from models.platform import OutboxItem, OutboxStatus

    with app.extensions["zhizhi"].db.session() as s:
        first, last, done = s.execute(
            select(
                func.min(OutboxItem.started_at),
                func.max(OutboxItem.finished_at),
                func.count().filter(OutboxItem.status == OutboxStatus.done),
            ).where(OutboxItem.id.in_(ids))
        ).one()
    assert done == len(ids), f"only {done}/{len(ids)} done"
    return (last - first).total_seconds()


def in_process(app, n: int, doc: str, start: int) -> float:
    from jobs.runner import run_item

    ids = _add_rows(app, n, doc, start)
    t = time.perf_counter()
    for i in ids:
        assert run_item(app, i) == "done"
    return n / (time.perf_counter() - t)


def through_rq(app, env: dict, n: int, doc: str, start: int, extra: tuple = ()) -> tuple[float, float]:
    from jobs.dispatch import enqueue

    ids = _add_rows(app, n, doc, start)
    for i in ids:
        enqueue(app, i, "certificates", "test.certificate")
    queue = f"{env['QUEUE_PREFIX']}certificates"
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "jobs.worker", "--burst", "--no-periodic", "--queues", queue, *extra],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t
    return n / _span(app, ids), n / wall


def run(database_url: str, baselines: dict) -> list:
    """``make bench``: permit PDFs and pass cards through one RQ worker (no fork per job)
    against the same jobs run in-process (the target: rq >= 80 % of in-process for PDFs)."""
    from bench.harness import Row, app_env

    n = int(os.environ.get("BENCH_CERTIFICATES", "270"))
    tmp = tempfile.mkdtemp(prefix="zz-bench-")
    env = {
        **app_env(database_url, INSTANCE_PATH=tmp, JOB_MODULES="tests.jobs.certificates"),
        "PYTHONPATH": str(ROOT),
    }
    from core.app import create_app
    from jobs.context import set_app

    keys_ = ("ZHIZHI_ENV", "DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "QUEUE_PREFIX")
    app = create_app({k: env[k] for k in keys_})  # the same Redis as the worker it starts
    set_app(app)
    import tests.jobs.certificates as certs

    rows = []
    with app.app_context():
        from services import keys

        with app.extensions["zhizhi"].db.session() as s:
            keys.signing_ring(s, certs.SCOPE, app.extensions["zhizhi"].settings.signing_kek)
        certs._warm_renderers()
        start = 10_000_000
        kinds = (("permit", "permit PDF (A4)", 0.80), ("card", "pass card PNG + PDF", None))
        for doc, label, target in kinds:
            # Rounds interleaved (in-process, then RQ) so that what else the machine does
            # hits both alike; the ratio is the median of the rounds' ratios.
            base, busy, wall, ratios = [], [], [], []
            per_round = max(1, n // ROUNDS)
            for _ in range(ROUNDS):
                base.append(in_process(app, per_round, doc, start))
                b, w = through_rq(app, env, per_round, doc, start + per_round, ("--worker-class", "simple"))
                busy.append(b)
                wall.append(w)
                ratios.append(b / base[-1])
                start += 2 * per_round
            ratio = statistics.median(ratios)
            rq_rate = statistics.median(busy)
            rows.append(
                Row(
                    f"certificates: {label} via RQ",
                    rq_rate,
                    "/s",
                    "in-process",
                    rq_rate / ratio,
                    target=f">= {target:.2f}" if target else "",
                    met=(ratio >= target) if target else None,
                    note=f"{ROUNDS} interleaved rounds of {per_round} jobs, one worker (--worker-class "
                    f"simple), first claim to last done; ratios {' '.join(f'{r:.2f}' for r in ratios)}; "
                    f"with worker start-up {statistics.median(wall):.1f}/s",
                )
            )
    app.extensions["zhizhi"].db.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgresql") or not os.environ.get("REDIS_URL"):
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL")
    db_url, drop = _scratch_db(os.environ["DATABASE_URL"])
    tmp = tempfile.mkdtemp(prefix="zz-bench-")
    env = {
        **os.environ,
        "ZHIZHI_ENV": "testing",
        "DATABASE_URL": db_url,
        "INSTANCE_PATH": tmp,
        "QUEUE_PREFIX": f"bench{os.getpid()}:",
        "JOB_MODULES": "tests.jobs.certificates",
        "PYTHONPATH": str(ROOT),
    }
    try:
        from core.app import create_app
        from core.migrate import upgrade
        from jobs.context import set_app

        app = create_app({k: env[k] for k in ("ZHIZHI_ENV", "DATABASE_URL", "INSTANCE_PATH", "QUEUE_PREFIX")})
        upgrade(db_url)
        set_app(app)
        import tests.jobs.certificates as certs

        with app.app_context():
            from services import keys

            with app.extensions["zhizhi"].db.session() as s:
                keys.signing_ring(s, certs.SCOPE, app.extensions["zhizhi"].settings.signing_kek)
            certs._warm_renderers()
            print(f"{args.n} jobs per run; 2 shared CPU cores; one worker process")
            start = 0
            for doc, label in (("permit", "permit PDF (A4)"), ("card", "pass card PNG + PDF")):
                base = in_process(app, args.n, doc, start)
                print(f"{label}: in-process {base:6.1f}/s (baseline)")
                for cls in ("fork", "simple"):
                    start += args.n
                    busy, wall = through_rq(app, env, args.n, doc, start, ("--worker-class", cls))
                    print(
                        f"  rq --worker-class {cls:6s} {busy:6.1f}/s  ratio {busy / base:4.2f}"
                        f"  (incl. worker start-up {wall:6.1f}/s, ratio {wall / base:4.2f})"
                    )
                start += args.n
        app.extensions["zhizhi"].db.dispose()
    finally:
        drop()


if __name__ == "__main__":
    main()
