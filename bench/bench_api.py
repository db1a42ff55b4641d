"""An authenticated API read (`GET /api/v1/auth/me`) against the bare JSON baseline:
the cost of our request path (auth with its cache, session, envelope)."""

from __future__ import annotations

from bench import loadgen
from bench.harness import Row, app_env, gunicorn


def _token(database_url: str) -> str:
    from core.app import create_app
    from services.auth import issue_token
    from tests.helpers import make_person

    app = create_app(app_env(database_url))
    ext = app.extensions["zhizhi"]
    with ext.db.session() as s:
        person = make_person(s, "grid_worker", name="压测用户")
        token = issue_token(s, person, "bench", 3600).token
    ext.db.dispose()
    return token


def run(database_url: str, baselines: dict[str, loadgen.Result]) -> list[Row]:
    token = _token(database_url)
    req = loadgen.build_request("GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    with gunicorn("wsgi:app", app_env(database_url)) as port:
        loadgen.run(port, lambda n: req, requests=300)
        res = loadgen.run(port, lambda n: req, requests=4000)
    assert res.statuses.get(200) == res.requests, res.statuses
    base = baselines["json"].rps
    return [
        Row(
            "authenticated GET /auth/me",
            res.rps,
            "req/s",
            "bare JSON",
            base,
            note=f"p50 {res.median:.1f} ms, p99 {res.pct(99):.1f} ms",
        )
    ]
