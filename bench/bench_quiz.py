"""Quiz benchmark: whole-attempt submit throughput and rank lookup latency with 300,000
workers in the points ledger, against a bare Flask JSON endpoint in the same run.

Both servers run under gunicorn (gthread) with the same settings; the load generator is
a thread pool in this process on the same machine, so the ratio (not the absolute
numbers) is what to compare. Needs PostgreSQL and Redis:

    .venv/bin/python bench/bench_quiz.py --pg postgresql://postgres@127.0.0.1:5432/postgres \
        --redis redis://127.0.0.1:6379/1 [--workers 300000 --submits 600 --concurrency 8]

It creates (and drops) its own database; it FLUSHes only the Redis db it is given.
Targets (issue 4): submit >= 30% of the bare endpoint; rank lookup p99 <= 10 ms.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seed(
    url: str, redis_url: str, n_workers: int, n_attempts: int
) -> tuple[list[tuple[str, int, list]], list]:
    """Org tree, n_workers grid workers with ledger rows, a paper, open attempts + tokens."""
    from sqlalchemy import text

    from core.app import create_app
    from core.auth import load_actor
    from core.migrate import upgrade
    from models.identity import OrgLevel, Person
    from models.quiz import QuestionKind
    from services.auth import issue_token
    from services.quiz import attempts, points
    from services.quiz.bank import Draft, store

    upgrade(url)
    app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "ZHIZHI_ENV": "testing"})
    ext = app.extensions["zhizhi"]
    ext.redis.flushdb()
    with app.app_context(), ext.db.session() as s:
        s.execute(
            text(
                "INSERT INTO org_units (code, name, level, path, created_at) VALUES "
                "('B0','区','district','/1/', now())"
            )
        )
        grids = []
        for st in range(4):
            sid = _unit(s, f"S{st}", "街道", OrgLevel.street, 1)
            for c in range(5):
                cid = _unit(s, f"B{st}-{c}", "社区", OrgLevel.community, sid)
                grids.append(_unit(s, f"B{st}-{c}-g", "网格", OrgLevel.grid, cid))
        s.execute(
            text(
                "INSERT INTO persons (name, org_unit_id, active, created_at) "
                "SELECT 'w' || g, (ARRAY[:grids])[1 + g % :ng], true, now() FROM generate_series(1, :n) g"
            ).bindparams(grids=grids, ng=len(grids), n=n_workers)
        )
        s.execute(
            text(
                "INSERT INTO role_grants (person_id, role, org_unit_id, created_at) "
                "SELECT id, 'grid_worker', org_unit_id, now() FROM persons"
            )
        )
        s.execute(
            text(
                "INSERT INTO quiz_point_entries (person_id, delta, source_type, source_id, reason, "
                "rules_version, created_at) SELECT id, (random() * 200)::int, 'award', 'seed', '基线', "
                "'2026-01', now() FROM persons"
            )
        )
        qids = []
        for i in range(10):
            d = Draft(
                QuestionKind.single,
                f"基准题{i}",
                [{"key": k, "text": f"选项{k}{i}"} for k in "ABCD"],
                "ABCD"[i % 4],
                explanation="解析",
                topics=["法律法规"],
            )
            qids.append(store(s, d, None, _now()).id)
    with app.app_context(), ext.db.session() as s:
        t0 = time.perf_counter()
        points.rebuild(s, ext.redis)
        print(f"redis sorted sets rebuilt from the ledger in {time.perf_counter() - t0:.1f}s")
        admin = s.scalar(text("SELECT id FROM persons ORDER BY id LIMIT 1"))
        s.execute(
            text(
                "INSERT INTO role_grants (person_id, role, org_unit_id, created_at) "
                "VALUES (:p, 'trainer', 1, now())"
            ),
            {"p": admin},
        )
        paper = attempts.create_paper(
            s,
            load_actor(s, admin),
            {"title": "基准", "mode": "fixed", "question_ids": qids, "duration_seconds": 3600},
        )
        jobs = []
        ids = list(s.scalars(text("SELECT id FROM persons ORDER BY id OFFSET 1 LIMIT :n"), {"n": n_attempts}))
        for pid in ids:
            person = s.get(Person, pid)
            tok = issue_token(s, person, "bench", 7200).token
            a = attempts.start(s, load_actor(s, pid), paper.id)
            answers = [{"position": it["position"], "choice": "A"} for it in a["items"]]
            jobs.append((tok, a["attempt_id"], answers))
    return jobs, ids


def _now():
    from core.db import utcnow

    return utcnow()


def _unit(s, code: str, name: str, level, parent: int) -> int:
    from sqlalchemy import text

    ppath = s.scalar(text("SELECT path FROM org_units WHERE id = :p"), {"p": parent})
    uid = s.scalar(
        text(
            "INSERT INTO org_units (parent_id, code, name, level, path, created_at) "
            "VALUES (:p, :c, :n, :l, '', now()) RETURNING id"
        ),
        {"p": parent, "c": code, "n": name, "l": level.value},
    )
    s.execute(text("UPDATE org_units SET path = :path WHERE id = :id"), {"path": f"{ppath}{uid}/", "id": uid})
    return uid


def serve(app_path: str, port: int, env: dict[str, str], workers: int, threads: int) -> subprocess.Popen:
    cmd = [
        str(ROOT / ".venv/bin/gunicorn"),
        "-k",
        "gthread",
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        app_path,
    ]
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env={**os.environ, **env})
    for _ in range(200):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/")
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app_path} did not start")


def blast(port: int, calls: list[tuple[str, str, dict | None, dict]], concurrency: int) -> tuple[float, list]:
    """Run ``calls`` over ``concurrency`` keep-alive connections (bench/loadgen.py, asyncio,
    pre-encoded requests); returns (req/s, latencies in seconds). Any non-2xx aborts."""
    from bench.loadgen import build_request, run

    reqs = [build_request(m, path, body, headers) for m, path, body, headers in calls]
    res = run(port, lambda n: reqs[n], requests=len(reqs), seconds=600, connections=concurrency)
    bad = {k: v for k, v in res.statuses.items() if k >= 300}
    if bad:
        raise RuntimeError(f"non-2xx answers: {bad}")
    return res.rps, [ms / 1000 for ms in res.latencies_ms]


def p(lat: list[float], q: float) -> float:
    return statistics.quantiles(lat, n=1000)[int(q * 1000) - 1] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/1")
    ap.add_argument("--workers", type=int, default=300_000)
    ap.add_argument("--submits", type=int, default=600)
    ap.add_argument("--ranks", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--gunicorn-workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    from sqlalchemy import create_engine, text

    base = args.pg.replace("postgresql://", "postgresql+psycopg://", 1).rsplit("/", 1)[0]
    name = f"zz_bench_quiz_{uuid.uuid4().hex[:6]}"
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{base}/{name}"
    procs: list[subprocess.Popen] = []
    try:
        t0 = time.perf_counter()
        jobs, _ids = seed(url, args.redis, args.workers, args.submits)
        print(
            f"seeded {args.workers} workers in the ledger, {len(jobs)} open attempts "
            f"in {time.perf_counter() - t0:.0f}s"
        )
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": args.redis,
            "ZHIZHI_ENV": "testing",
            "AUTH_CACHE_SECONDS": "30",
        }
        procs.append(serve("bench._bare_app:app", 18081, env, args.gunicorn_workers, args.threads))
        procs.append(serve("wsgi:app", 18082, env, args.gunicorn_workers, args.threads))
        n = len(jobs)
        bare_calls = [("POST", "/bare", {"answers": j[2]}, {}) for j in jobs]
        blast(18081, bare_calls[: n // 5], args.concurrency)  # warm-up
        bare_rps, _ = blast(18081, bare_calls, args.concurrency)
        warm = [
            ("GET", f"/api/v1/quiz/attempts/{aid}", None, {"Authorization": f"Bearer {tok}"})
            for tok, aid, _ in jobs
        ]
        blast(18082, warm, args.concurrency)  # first requests load code paths and fill the token cache
        sub_calls = [
            (
                "POST",
                f"/api/v1/quiz/attempts/{aid}/submit",
                {"answers": ans},
                {"Authorization": f"Bearer {tok}", "Idempotency-Key": f"k{aid}"},
            )
            for tok, aid, ans in jobs
        ]
        sub_rps, sub_lat = blast(18082, sub_calls, args.concurrency)
        print(
            f"submit: {sub_rps:7.0f} req/s   bare: {bare_rps:7.0f} req/s   ratio {sub_rps / bare_rps:5.1%}"
            f"   (target >= 30%)   submit p50 {p(sub_lat, 0.5):.1f} ms p99 {p(sub_lat, 0.99):.1f} ms"
        )
        toks = [j[0] for j in jobs]
        rank_calls = [
            ("GET", "/api/v1/quiz/me/rank", None, {"Authorization": f"Bearer {toks[i % len(toks)]}"})
            for i in range(args.ranks)
        ]
        blast(18082, rank_calls[:200], 1)  # warm the token cache
        _, rank_lat = blast(18082, rank_calls, 1)
        bare_rank = [("GET", "/bare", None, {}) for _ in range(args.ranks)]
        _, bare_lat = blast(18081, bare_rank, 1)
        print(
            f"rank lookup over HTTP: p50 {p(rank_lat, 0.5):.2f} ms  p99 {p(rank_lat, 0.99):.2f} ms"
            " (target <= 10 ms)"
            f"   bare GET p99 {p(bare_lat, 0.99):.2f} ms"
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
