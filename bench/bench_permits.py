"""Permits: instant-check decision time and ledger filing throughput beside bare Flask JSON.

Served by the harness's gunicorn (gthread) like the baselines, on PostgreSQL + Redis:

* instant check: ``POST /api/v1/permits/applications/transport`` over one connection
  (decision time, no queueing): nine credential rules, plate, driver membership,
  licence, risk code, remaining purchase quantity, then the permit number, the
  Ed25519-signed QR and the certificate outbox row (rendering runs on the RQ worker),
  commit. Target: p99 <= 100 ms.
* ledger filing: ``POST /api/v1/permits/enterprises/<id>/events`` over 16 connections,
  each a distinct event with its own idempotency key, spread over 20 stock streams
  (enterprise × site × chemical), every answer a 201. Write-behind: role, catalogue and
  quantity checked from process caches, then one Redis EVALSHA (idempotency, book stock,
  XADD). Target: >= 30% of the bare JSON endpoint's throughput, served beside it and
  measured in interleaved rounds (the median of the rounds' ratios), so that drift in
  what else the machine does hits both alike. Afterwards the stream is
  drained into PostgreSQL (what the every-minute ``permits_flush`` does) and the rows are
  counted: every accepted event must be there exactly once, with the final book stock.

Run with the others: ``BENCH_REDIS=redis://127.0.0.1:6379/<db> python -m bench --only
bench.bench_permits`` or alone: ``python bench/bench_permits.py`` (same variables).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadgen
from bench.harness import Row, app_env, bench_database, gunicorn, paired, print_table

STREAMS = 20
ROUNDS, PER_ROUND = 8, 500  # ledger filing: rounds interleaved with rounds of the bare endpoint


def _setup(database_url: str) -> dict:
    """A seller, a buyer with a huge purchase filing, a carrier with valid credentials."""
    from sqlalchemy import select

    from core.app import create_app
    from core.db import utcnow
    from models.permits.catalogue import Chemical
    from services.permits import issuing
    from tests.helpers import token_for
    from tests.services.permits import factories

    app = create_app(app_env(database_url))
    ext = app.extensions["zhizhi"]
    with ext.db.session() as s:
        factories.NOW = utcnow()
        factories.TODAY = issuing.local_date(factories.NOW)
        w = factories.build_world(s, ext.settings.signing_kek)
        pp = factories.purchase(s, w, quantity=Decimal(10**9))
        chems = list(s.scalars(select(Chemical.id).order_by(Chemical.id).limit(STREAMS)))
        out = {
            "transport": {
                "enterprise_id": w.buyer.id,
                "purchase_permit_id": pp.id,
                "carrier_enterprise_id": w.carrier.id,
                "vehicle_id": w.vehicle.id,
                "plate": "浙F12345",
                "driver_id": w.driver.id,
                "quantity": "1",
                "unit": "kg",
                "window_start": factories.TODAY.isoformat(),
                "window_end": (factories.TODAY + timedelta(days=1)).isoformat(),
            },
            "buyer_token": token_for(s, w.buyer_mgr),
            "seller_token": token_for(s, w.seller_mgr),
            "seller_id": w.seller.id,
            "chemicals": chems,
        }
    ext.db.dispose()
    return out


def _expect(status: int) -> object:
    def check(got: int, body: bytes) -> None:
        if got != status:
            raise AssertionError(f"HTTP {got}: {body[:300]!r}")

    return check


def run(database_url: str, baselines: dict[str, loadgen.Result]) -> list[Row]:
    d = _setup(database_url)
    check_req = loadgen.build_request(
        "POST",
        "/api/v1/permits/applications/transport",
        d["transport"],
        {"Authorization": f"Bearer {d['buyer_token']}"},
    )

    def event(n: int) -> bytes:
        body = {
            "kind": "produce",
            "chemical_id": d["chemicals"][n % len(d["chemicals"])],
            "quantity": "1",
            "unit": "kg",
            "idempotency_key": f"bench-{n}",
        }
        return loadgen.build_request(
            "POST",
            f"/api/v1/permits/enterprises/{d['seller_id']}/events",
            body,
            {"Authorization": f"Bearer {d['seller_token']}"},
        )

    bare_req = loadgen.build_request("GET", "/json")
    rounds = [[event(r * PER_ROUND + k) for k in range(PER_ROUND)] for r in range(ROUNDS)]
    with gunicorn("bench.baseline:app") as bare_port, gunicorn("wsgi:app", app_env(database_url)) as port:
        loadgen.run(bare_port, lambda n: bare_req, requests=500)
        loadgen.run(port, lambda n: check_req, requests=30, connections=1, check=_expect(201))
        checks = loadgen.run(port, lambda n: check_req, requests=300, connections=1, check=_expect(201))
        warm = loadgen.run(port, lambda n: event(10**7 + n), requests=300, check=_expect(201))
        events = paired(bare_port, bare_req, port, rounds, check=_expect(201))
    p99 = checks.pct(99)
    kept = _drain_and_count(database_url, d["seller_id"])
    filed = warm.requests + events.requests
    return [
        Row(
            "permits: instant check decision p99",
            p99,
            "ms",
            target="p99 <= 100 ms",
            met=p99 <= 100,
            note=f"p50 {checks.median:.1f} ms over {checks.requests} decisions, one connection",
        ),
        Row(
            "permits: ledger event filing",
            events.median_rps,
            "req/s",
            "bare JSON",
            events.median_rps / events.ratio,
            target=">= 30% of bare",
            met=events.ratio >= 0.3,
            note=f"{events.describe()}; 16 connections, {STREAMS} streams",
        ),
        Row(
            "ledger events kept (stream -> PostgreSQL)",
            kept["rows"],
            "rows",
            target=f"= {filed} filed",
            met=kept["rows"] == filed and kept["book"] == filed,
            note=f"{kept['moved']} stream entries drained in {kept['seconds']:.2f} s "
            f"({kept['moved'] / max(kept['seconds'], 1e-9):,.0f}/s); book stock {kept['book']:,} kg",
        ),
    ]


def _drain_and_count(database_url: str, seller_id: int) -> dict:
    """Drain the ledger stream as ``permits_flush`` does; count rows and the seller's book."""
    import time

    from sqlalchemy import func, select

    from core.app import create_app
    from models.permits.ledger import LedgerEvent, StockBalance
    from services.permits import ledger_drain

    app = create_app(app_env(database_url))
    ext = app.extensions["zhizhi"]
    t0 = time.perf_counter()
    with app.app_context():
        moved = ledger_drain.flush(app)
    seconds = time.perf_counter() - t0
    with ext.db.session() as s:
        rows = s.scalar(select(func.count()).select_from(LedgerEvent))
        seller = StockBalance.enterprise_id == seller_id
        book = s.scalar(select(func.sum(StockBalance.quantity)).where(seller))
    ext.db.dispose()
    return {"moved": moved, "seconds": seconds, "rows": rows, "book": int(book or 0)}


def main() -> None:
    from bench.__main__ import measure_baselines

    baselines = measure_baselines(4000)
    rows = [Row("baseline: bare Flask JSON", baselines["json"].rps, "req/s")]
    with bench_database() as url:
        rows.extend(run(url, baselines))
    print_table(rows)


if __name__ == "__main__":
    main()
