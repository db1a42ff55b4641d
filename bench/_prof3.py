import cProfile, pstats, time, sys, collections
from sqlalchemy import event
from bench.harness import bench_database, app_env
from bench import bench_quiz
with bench_database() as url:
    from core.app import create_app
    from services.quiz import intake
    env = app_env(url)
    app = create_app(env)
    ext = app.extensions["zhizhi"]; ext.redis.flushdb()
    jobs = bench_quiz.seed(app, 2000, 300)
    c = app.test_client()
    for tok, aid, ans in jobs:
        c.post(f"/api/v1/quiz/attempts/{aid}/submit", json={"answers": ans}, headers={"Authorization": f"Bearer {tok}", "Idempotency-Key": f"k{aid}"})
    stmts = collections.Counter()
    @event.listens_for(ext.db.engine, "before_cursor_execute")
    def cnt(conn, cursor, statement, params, context, executemany):
        stmts[(statement[:90].replace("\n"," "), executemany)] += 1
    pr = cProfile.Profile(); pr.enable()
    t = time.perf_counter()
    with app.app_context():
        n = intake.drain(ext.db, ext.redis, limit=100)
    print("drain", n, time.perf_counter() - t)
    pr.disable()
    for k, v in stmts.most_common(30): print(v, k)
    pstats.Stats(pr).sort_stats("cumulative").print_stats(40)
    ext.db.dispose()
