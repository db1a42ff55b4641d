"""Quiz: whole-attempt submit throughput and rank lookup latency with 300,000 workers in
the points ledger, against the bare Flask JSON endpoint served the same way (issue 4).

Seeds the org tree, ``BENCH_QUIZ_WORKERS`` (default 300,000) grid workers with ledger
rows, their Redis sorted sets rebuilt from the ledger, a 10-question paper and one open
attempt per submitting worker. Submits are real: distinct workers, distinct attempts,
every answer given, an Idempotency-Key each, all must answer 200. Submit throughput is
measured in rounds interleaved with rounds of the bare endpoint (median ratio); the
drain that records the accepted submits in PostgreSQL is timed after them, and every
accepted submit must then be a submitted attempt in the database. Rank lookups run on
one connection (latency, not throughput).

Part of ``make bench``; alone: ``python -m bench --only bench.bench_quiz``.
"""

from __future__ import annotations

import json
import os
import time

from bench import loadgen
from bench.harness import Cpu, Row, app_env, gunicorn, paired

WORKERS = int(os.environ.get("BENCH_QUIZ_WORKERS", "300000"))
ROUNDS, PER_ROUND = 7, 400
RANKS = 2000
SUBMIT_TARGET, RANK_P99_MS = 0.30, 10.0


def _unit(s, code: str, name: str, level: str, parent: int) -> int:
    from sqlalchemy import text

    ppath = s.scalar(text("SELECT path FROM org_units WHERE id = :p"), {"p": parent})
    uid = s.scalar(
        text(
            "INSERT INTO org_units (parent_id, code, name, level, path, created_at) "
            "VALUES (:p, :c, :n, :l, '', now()) RETURNING id"
        ),
        {"p": parent, "c": code, "n": name, "l": level},
    )
    s.execute(text("UPDATE org_units SET path = :path WHERE id = :id"), {"path": f"{ppath}{uid}/", "id": uid})
    return uid


def seed(app, n_workers: int, n_attempts: int) -> list[tuple[str, int, list]]:
    """Returns (token, attempt id, answers) per submitting worker."""
    from sqlalchemy import text

    from core.auth import load_actor
    from core.db import utcnow
    from models.identity import Person
    from models.quiz import QuestionKind
    from services.auth import issue_token
    from services.quiz import attempts, points
    from services.quiz.bank import Draft, store

    ext = app.extensions["zhizhi"]
    with app.app_context(), ext.db.session() as s:
        district = s.scalar(
            text(
                "INSERT INTO org_units (code, name, level, path, created_at) "
                "VALUES ('B0', '压测区', 'district', '', now()) RETURNING id"
            )
        )
        s.execute(
            text("UPDATE org_units SET path = :p WHERE id = :id"), {"p": f"/{district}/", "id": district}
        )
        grids = []
        for st in range(4):
            sid = _unit(s, f"S{st}", f"街道{st}", "street", district)
            for c in range(5):
                cid = _unit(s, f"C{st}-{c}", f"社区{st}-{c}", "community", sid)
                grids.append(_unit(s, f"G{st}-{c}", f"网格{st}-{c}", "grid", cid))
        s.execute(
            text(
                "INSERT INTO persons (name, org_unit_id, active, created_at) "
                "SELECT '网格员' || g, (CAST(:grids AS int[]))[1 + g % :ng], true, now() "
                "FROM generate_series(1, :n) g"
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
        qids = [
            store(
                s,
                Draft(
                    QuestionKind.single,
                    f"压测题{i}",
                    [{"key": k, "text": f"选项{k}{i}"} for k in "ABCD"],
                    "ABCD"[i % 4],
                    explanation="解析",
                    topics=["法律法规"],
                ),
                None,
                utcnow(),
            ).id
            for i in range(10)
        ]
        trainer = s.scalar(text("SELECT id FROM persons ORDER BY id LIMIT 1"))
        s.execute(
            text(
                "INSERT INTO role_grants (person_id, role, org_unit_id, created_at) "
                "VALUES (:p, 'trainer', :d, now())"
            ),
            {"p": trainer, "d": district},
        )
    with app.app_context(), ext.db.session() as s:
        points.rebuild(s, ext.redis)
        paper = attempts.create_paper(
            s,
            load_actor(s, trainer),
            {"title": "压测卷", "mode": "fixed", "question_ids": qids, "duration_seconds": 3600},
        )
        paper_id = paper.id
    jobs = []
    with app.app_context(), ext.db.session() as s:
        ids = list(s.scalars(text("SELECT id FROM persons ORDER BY id OFFSET 1 LIMIT :n"), {"n": n_attempts}))
    for chunk in range(0, len(ids), 100):
        with app.app_context(), ext.db.session() as s:  # commits: the sheets are cached after it
            for pid in ids[chunk : chunk + 100]:
                tok = issue_token(s, s.get(Person, pid), "bench", 7200).token
                a = attempts.start(s, load_actor(s, pid), paper_id)
                jobs.append(
                    (tok, a["attempt_id"], [{"position": it["position"], "choice": "A"} for it in a["items"]])
                )
    return jobs


def _settle(ext) -> None:
    """VACUUM ANALYZE after the bulk load, so that autovacuum does not pick the seeded
    tables (300,000 persons, grants and ledger rows) in the middle of the rounds: the
    rounds measure a running service, not its first maintenance after a bulk import."""
    from sqlalchemy import text

    with ext.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def _ok(status: int, body: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"unexpected {status}: {body[:300]!r}")


def run(database_url: str, baselines: dict[str, loadgen.Result]) -> list[Row]:
    from core.app import create_app
    from services.quiz import recording

    env = app_env(database_url)
    app = create_app(env)
    ext = app.extensions["zhizhi"]
    ext.redis.flushdb()
    t0 = time.perf_counter()
    jobs = seed(app, WORKERS, ROUNDS * PER_ROUND)
    seeded = time.perf_counter() - t0
    _settle(ext)
    submits = [
        loadgen.build_request(
            "POST",
            f"/api/v1/quiz/attempts/{aid}/submit",
            {"answers": answers},
            {"Authorization": f"Bearer {tok}", "Idempotency-Key": f"bench-{aid}"},
        )
        for tok, aid, answers in jobs
    ]
    warm = [
        loadgen.build_request("GET", "/api/v1/quiz/me/rank", headers={"Authorization": f"Bearer {tok}"})
        for tok, _aid, _a in jobs
    ]
    bare_req = loadgen.build_request("GET", "/json")
    with gunicorn("bench.baseline:app") as bare_port, gunicorn("wsgi:app", env) as port:
        loadgen.run(bare_port, lambda n: bare_req, requests=500)
        loadgen.run(port, lambda n: warm[n], requests=len(warm), check=_ok)  # token caches, code paths
        rounds = [submits[i * PER_ROUND : (i + 1) * PER_ROUND] for i in range(ROUNDS)]
        cpu = Cpu(bare_port, port)
        sub = paired(bare_port, bare_req, port, rounds, check=_ok)
        cpu_bare, cpu_submit = cpu.per_request_us(sub.bare_requests, sub.requests)
        t0 = time.perf_counter()
        with app.app_context():
            recorded = recording.drain_all(ext.db, ext.redis, budget=600)
        drain_s = time.perf_counter() - t0
        # Steady state: the workers' tokens are in the servers' caches (AUTH_CACHE_SECONDS),
        # as they are for a worker who keeps using the app; the drain above outlasts them.
        loadgen.run(port, lambda n: warm[n], requests=len(warm), check=_ok)
        ranks = loadgen.run(port, lambda n: warm[n % len(warm)], requests=RANKS, connections=1, check=_ok)
        bare_one = loadgen.run(bare_port, lambda n: bare_req, requests=RANKS, connections=1)
    from sqlalchemy import text

    with ext.db.session() as s:
        stored = s.scalar(text("SELECT count(*) FROM quiz_attempts WHERE status = 'submitted'"))
    ext.db.dispose()
    return [
        Row(
            "quiz: whole-attempt submit",
            sub.median_rps,
            "req/s",
            "bare JSON",
            sub.median_rps / sub.ratio,
            target=f">= {SUBMIT_TARGET:.2f}",
            met=sub.ratio >= SUBMIT_TARGET,
            note=f"{WORKERS:,} workers in the ledger (seeded in {seeded:.0f} s); "
            + sub.describe()
            + f"; server CPU per request: bare {cpu_bare:.0f} us, submit {cpu_submit:.0f} us "
            f"(ratio {cpu_bare / cpu_submit:.2f})",
        ),
        Row(
            "quiz: submits recorded by the drain",
            recorded / drain_s if drain_s else 0.0,
            "/s",
            note=f"{recorded} accepted, {stored} submitted attempts in PostgreSQL afterwards "
            f"({'none lost' if stored == len(jobs) == recorded else 'MISMATCH'}); one transaction per 500",
        ),
        Row(
            "quiz: rank lookup p99 (GET /quiz/me/rank)",
            ranks.pct(99),
            "ms",
            "bare p99",
            bare_one.pct(99),
            target=f"<= {RANK_P99_MS:.0f} ms",
            met=ranks.pct(99) <= RANK_P99_MS,
            note=f"one connection, {RANKS} lookups among {WORKERS:,}; p50 {ranks.median:.2f} ms; "
            f"bare GET p50 {bare_one.median:.2f} ms",
        ),
    ]


if __name__ == "__main__":
    print(json.dumps("use: python -m bench --only bench.bench_quiz"))
