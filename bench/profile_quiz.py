"""In-process profile of whole-attempt submit ``POST /api/v1/quiz/attempts/<id>/submit``
(PostgreSQL + real Redis), the write-behind path of ``services.quiz.intake``.

1. Counts, for one submit, the Redis commands and the SQL statements.
2. CPU per request calling the WSGI app directly (no server, no client), beside a bare
   Flask JSON endpoint called the same way, alternating rounds; min and median.
3. A cProfile of the submits (CPU time): our modules by cumulative time, or every
   function by own time (``--tottime``).

No gunicorn and no load generator, so the numbers barely depend on what else runs on the
machine. ``BENCH_PG`` / ``BENCH_REDIS`` as for ``make bench``:
``BENCH_REDIS=redis://127.0.0.1:6379/9 .venv/bin/python -m bench.profile_quiz [--top 30]``
"""

from __future__ import annotations

import argparse
import statistics

from bench.profile_gate import Counters, bare_json_app, environs, print_cpu_profile, wsgi_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=600, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--tottime", action="store_true", help="every function by own time")
    args = parser.parse_args()

    from bench.bench_quiz import seed
    from bench.harness import app_env, bench_database
    from core.app import create_app

    needed = args.submits * (args.rounds + 2) + 1
    with bench_database() as url:
        app = create_app(app_env(url))
        ext = app.extensions["zhizhi"]
        ext.redis.flushdb()
        jobs = seed(app, needed + 100, needed)

        def envs_for(batch):
            return [
                environs(
                    f"/api/v1/quiz/attempts/{aid}/submit",
                    [{"answers": answers}],
                    {"Authorization": f"Bearer {tok}", "Idempotency-Key": f"p-{aid}"},
                )[0]
                for tok, aid, answers in batch
            ]

        batches = [jobs[i * args.submits : (i + 1) * args.submits] for i in range(args.rounds + 2)]
        # Steady state, as in bench_quiz: each worker's token is in the process's cache.
        for tok, _aid, _answers in jobs:
            wsgi_cpu(app, environs("/api/v1/quiz/me/rank", [None], {"Authorization": f"Bearer {tok}"}))
        counters = Counters(ext.db.engine)
        client = app.test_client()
        tok, aid, answers = jobs[-1]
        counters.active = True
        resp = client.post(
            f"/api/v1/quiz/attempts/{aid}/submit",
            json={"answers": answers},
            headers={"Authorization": f"Bearer {tok}", "Idempotency-Key": f"p-{aid}"},
        )
        counters.active = False
        print(f"one submit: {resp.status_code}, {len(resp.data)} bytes")
        print(f"  redis: {dict(counters.redis)}")
        print(f"  sql statements: {len(counters.sql)} {counters.sql}")

        bare = bare_json_app()
        sub_us, bare_us = [], []
        for batch in batches[: args.rounds]:
            sub_us.append(wsgi_cpu(app, envs_for(batch)))
            bare_us.append(wsgi_cpu(bare, environs("/json", [None] * len(batch), {})))
        for label, xs in (("submit", sub_us), ("bare JSON", bare_us)):
            print(f"direct WSGI CPU, {label}: min {min(xs):.0f} us, median {statistics.median(xs):.0f} us")

        print_cpu_profile(
            app,
            envs_for(batches[args.rounds]),
            tottime=args.tottime,
            top=args.top,
            ours=r"/(core|services|miniapp_api)/",
        )
        ext.db.dispose()


if __name__ == "__main__":
    main()
