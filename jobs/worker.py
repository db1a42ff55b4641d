"""`python -m jobs.worker`: an RQ worker for every queue (priority order) with the scheduler.

`make worker` runs this. Options: `--burst` (exit when the queues are empty), `--queues`
(override the list), `--processes N` (a pool of N workers, RQ's WorkerPool),
`--no-periodic` (do not start the periodic scheduler, ``python -m jobs.scheduler``, which
otherwise runs as a child process next to the workers).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import subprocess
import sys

from rq import Queue, SimpleWorker, Worker

from jobs.queues import QUEUES, queue_name


def _queues(app, names: list[str] | None) -> list[Queue]:
    ext = app.extensions["zhizhi"]
    wanted = names or [queue_name(ext.settings.queue_prefix, q) for q in QUEUES]
    return [Queue(n, connection=ext.rq_redis) for n in wanted]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--queues", nargs="*")
    parser.add_argument("--no-periodic", action="store_true")
    parser.add_argument(
        "--worker-class",
        choices=("fork", "simple"),
        default=os.environ.get("WORKER_CLASS", "simple"),
        help="fork: a work-horse process per job (RQ default); simple: jobs run in the worker "
        "process itself (no fork per job; timeouts still enforced by SIGALRM)",
    )
    parser.add_argument("--processes", type=int, default=int(os.environ.get("WORKER_PROCESSES", "1")))
    args = parser.parse_args(argv)

    from jobs.context import get_app

    app = get_app()
    settings = app.extensions["zhizhi"].settings
    if settings.inline_jobs:
        raise SystemExit("REDIS_URL is not set: jobs run inline; there is nothing for a worker to do")
    for module in filter(None, os.environ.get("JOB_MODULES", "").split(",")):
        importlib.import_module(module.strip())
    logging.getLogger("rq").setLevel(logging.INFO)
    from jobs.registry import run_warmups
    from jobs.runner import install_job_log_filter

    install_job_log_filter()

    run_warmups()  # handlers imported, caches filled: every forked horse inherits them
    _warm_database(app)
    # Keep the warmed heap out of the children's garbage collections: a collection that
    # walks inherited objects copies their pages (copy-on-write) in every work-horse.
    gc.collect()
    gc.freeze()
    queues = _queues(app, args.queues)
    scheduler = None if (args.burst or args.no_periodic) else _start_periodic()
    try:
        _work(app, queues, args)
    finally:
        if scheduler is not None:
            scheduler.terminate()
            scheduler.wait(timeout=10)


def _warm_database(app) -> None:
    """Connect once so the dialect is initialised in the parent, then drop the connection:
    work-horses inherit an initialised engine with an empty pool (never a shared socket)."""
    engine = app.extensions["zhizhi"].db.engine
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()


def _start_periodic() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jobs.scheduler"])


def _work(app, queues: list[Queue], args: argparse.Namespace) -> None:
    if args.processes > 1:
        from rq.worker_pool import WorkerPool

        pool = WorkerPool(queues, connection=app.extensions["zhizhi"].rq_redis, num_workers=args.processes)
        pool.start(burst=args.burst)
        return
    cls = SimpleWorker if args.worker_class == "simple" else Worker
    worker = cls(queues, connection=app.extensions["zhizhi"].rq_redis)
    worker.work(burst=args.burst, with_scheduler=True)


if __name__ == "__main__":
    main()
