import cProfile, pstats, time, sys
from bench.harness import bench_database, app_env
from bench import bench_quiz
with bench_database() as url:
    from core.app import create_app
    env = app_env(url)
    app = create_app(env)
    ext = app.extensions["zhizhi"]; ext.redis.flushdb()
    jobs = bench_quiz.seed(app, 2000, 1200)
    c = app.test_client()
    def rank(i):
        tok = jobs[i % len(jobs)][0]
        return c.get("/api/v1/quiz/me/rank", headers={"Authorization": f"Bearer {tok}"})
    def submit(i):
        tok, aid, ans = jobs[i]
        return c.post(f"/api/v1/quiz/attempts/{aid}/submit", json={"answers": ans}, headers={"Authorization": f"Bearer {tok}", "Idempotency-Key": f"k{aid}"})
    for i in range(len(jobs)): rank(i)
    t = time.perf_counter()
    for i in range(1000): r = rank(i)
    print("rank ms", (time.perf_counter() - t), r.status_code, r.json)
    t = time.perf_counter()
    for i in range(200): r = submit(i)
    print("submit ms", (time.perf_counter() - t) / 200 * 1000, r.status_code)
    which = sys.argv[1] if len(sys.argv) > 1 else "submit"
    pr = cProfile.Profile(); pr.enable()
    if which == "submit":
        for i in range(200, 1000): submit(i)
    else:
        for i in range(1000): rank(i)
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(30)
    ext.db.dispose()
