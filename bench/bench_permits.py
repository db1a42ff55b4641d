"""Instant-check decision time and ledger filing throughput beside a bare Flask endpoint.

All three are measured in the same run through Flask's test client (same WSGI path, no
network): a bare ``@app.post`` returning JSON, ``POST /api/v1/permits/applications/
transport`` (the full instant check: nine credential rules, risk code, licence,
permit remaining, then number + Ed25519-signed QR + outbox row, commit) and
``POST /api/v1/permits/enterprises/<id>/events`` (role check, catalogue, idempotency
key, row-locked mass balance, commit). Outbox rows go to Redis (RQ) rather than
rendering PDFs inline, as in production.

Targets (issue 6): instant check p99 <= 100 ms; filing >= 30% of the bare endpoint.

Run (PostgreSQL; a scratch database is created and dropped):
``DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/3 \
  .venv/bin/python bench/bench_permits.py [--n 300]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask, jsonify
from sqlalchemy import create_engine, text


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(call, n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def bare_client():
    bare = Flask("bare")

    @bare.post("/bare")
    def view():
        return jsonify({"ok": True, "data": {"id": 1}})

    return bare.test_client()


def setup(app):
    from decimal import Decimal

    from core.db import utcnow
    from services.permits import issuing, ledger
    from tests.helpers import token_for
    from tests.services.permits import factories

    ext = app.extensions["zhizhi"]
    s = ext.db.sessionmaker()
    factories.NOW = utcnow()
    factories.TODAY = issuing.local_date(factories.NOW)
    w = factories.build_world(s, ext.settings.signing_kek)
    pp = factories.purchase(s, w, quantity=Decimal(10**9))
    ledger.file_event(
        s,
        factories.actor(s, w.seller_mgr),
        w.seller.id,
        kind="produce",
        chemical_id=w.toluene.id,
        quantity=Decimal(1),
        unit="kg",
        idempotency_key="warm",
    )
    tokens = (token_for(s, w.buyer_mgr), token_for(s, w.seller_mgr))
    s.commit()
    s.close()
    return w, pp, factories.TODAY, tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        sys.exit("set DATABASE_URL to a PostgreSQL server (see the docstring)")
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    base = url.rpartition("/")[0]
    name = f"zz_bench_permits_{uuid.uuid4().hex[:6]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        run(f"{base}/{name}", args.n)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(db_url: str, n: int) -> None:
    from core.app import create_app
    from core.migrate import upgrade

    env = {
        "ZHIZHI_ENV": "testing",
        "DATABASE_URL": db_url,
        "INSTANCE_PATH": tempfile.mkdtemp(),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "QUEUE_PREFIX": "benchpermits:",
        "AUTH_CACHE_SECONDS": "5",
    }
    app = create_app(env)
    upgrade(db_url)
    w, pp, today, (buyer_token, seller_token) = setup(app)
    client, bare = app.test_client(), bare_client()
    body = {
        "enterprise_id": w.buyer.id,
        "purchase_permit_id": pp.id,
        "carrier_enterprise_id": w.carrier.id,
        "vehicle_id": w.vehicle.id,
        "plate": "浙F12345",
        "driver_id": w.driver.id,
        "quantity": "1",
        "unit": "kg",
        "window_start": today.isoformat(),
        "window_end": (today + timedelta(days=1)).isoformat(),
    }
    hb = {"Authorization": f"Bearer {buyer_token}"}
    hs = {"Authorization": f"Bearer {seller_token}"}

    def check(_i):
        r = client.post("/api/v1/permits/applications/transport", json=body, headers=hb)
        assert r.status_code == 201, r.json

    def event(i):
        ev = {
            "kind": "produce",
            "chemical_id": w.toluene.id,
            "quantity": "1",
            "unit": "kg",
            "idempotency_key": f"b{i}",
        }
        r = client.post(f"/api/v1/permits/enterprises/{w.seller.id}/events", json=ev, headers=hs)
        assert r.status_code == 201, r.json

    def bare_call(_i):
        bare.post("/bare", json=body)

    for warm in (check, event, bare_call):
        warm(10**6)
    engine = app.extensions["zhizhi"].db.engine

    def round_trip(_i):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    rtt_ms = timed(round_trip, n)
    bare_ms = timed(bare_call, n)
    check_ms = timed(check, n)
    event_ms = timed(event, n)
    bare_rate = 1000 / statistics.mean(bare_ms)
    event_rate = 1000 / statistics.mean(event_ms)
    rows = [
        ("bare Flask JSON endpoint", bare_ms, f"{bare_rate:8.0f} req/s"),
        ("PostgreSQL SELECT 1 (context)", rtt_ms, ""),
        ("instant check (transport)", check_ms, "target p99 <= 100 ms"),
        (
            "ledger event filing",
            event_ms,
            f"{event_rate:6.0f} events/s = {100 * event_rate / bare_rate:.1f}% of bare",
        ),
    ]
    for label, ms, note in rows:
        print(f"{label:30s} median {statistics.median(ms):7.2f} ms  p99 {pct(ms, 99):7.2f} ms  {note}")
    print("ledger target: filing >= 30% of the bare endpoint's throughput")
    redis = app.extensions["zhizhi"].redis
    for key in redis.scan_iter("*benchpermits:*"):
        redis.delete(key)
    app.extensions["zhizhi"].db.dispose()


if __name__ == "__main__":
    main()
