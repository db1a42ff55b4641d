"""`make bench`: baselines and every product benchmark in one run, one table, one JSON file.

Needs PostgreSQL and Redis (BENCH_PG, BENCH_REDIS). Each product benchmark module has
``run(database_url, baselines) -> list[Row]``; baselines are measured first with the same
gunicorn settings.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from bench import loadgen
from bench.harness import Row, bench_database, gunicorn, print_table, save

#: module name, in the order they run
BENCHES = [
    "bench.bench_api",
    "bench.bench_quiz",
    "bench.bench_gate",
    "bench.bench_bot",
    "bench.bench_permits",
    "bench.bench_credential_sweep",
    "bench.bench_certificates",
]


def measure_baselines(requests: int) -> dict[str, loadgen.Result]:
    with gunicorn("bench.baseline:app") as port:
        loadgen.run(port, lambda n: loadgen.build_request("GET", "/json"), requests=500)  # warm-up
        bare_json = loadgen.run(port, lambda n: loadgen.build_request("GET", "/json"), requests=requests)
        success = loadgen.run(
            port, lambda n: loadgen.build_request("POST", "/success", b"x"), requests=requests
        )
    return {"json": bare_json, "success": success}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="module names to run (default: all)")
    parser.add_argument("--requests", type=int, default=6000)
    args = parser.parse_args(argv)
    started = time.time()
    baselines = measure_baselines(args.requests)
    rows = [
        Row(
            "baseline: bare Flask JSON",
            baselines["json"].rps,
            "req/s",
            note=f"p50 {baselines['json'].median:.1f} ms, p99 {baselines['json'].pct(99):.1f} ms",
        ),
        Row(
            "baseline: bare `success`",
            baselines["success"].rps,
            "req/s",
            note=f"p50 {baselines['success'].median:.1f} ms, p99 {baselines['success'].pct(99):.1f} ms",
        ),
    ]
    with bench_database() as url:
        for name in args.only or BENCHES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                rows.append(Row(name, 0, "-", note=f"not run: {exc}"))
                continue
            print(f"running {name} ...", file=sys.stderr)
            try:
                rows.extend(module.run(url, baselines))
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the rest
                rows.append(Row(name, 0, "-", note=f"FAILED: {type(exc).__name__}: {exc}"[:300]))
    print_table(rows)
    path = save(rows)
    print(f"\nresults: {path.relative_to(path.parents[2])}  ({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
