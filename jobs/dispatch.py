"""Hand committed outbox rows to RQ (or run them inline without Redis)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis
from flask import Flask
from rq import Queue

from jobs.queues import queue_name

log = logging.getLogger("zhizhi.jobs")


def job_id(item_id: int) -> str:
    return f"outbox-{item_id}"


def get_queue(app: Flask, name: str) -> Queue:
    ext = app.extensions["zhizhi"]
    return Queue(queue_name(ext.settings.queue_prefix, name), connection=ext.rq_redis)


def dispatch(app: Flask, items: Iterable[tuple[int, str, str]]) -> None:
    """Enqueue (or run inline) rows that were just committed: (id, queue, kind).

    A Redis failure here loses nothing: the rows stay pending and the reconciler
    enqueues them once Redis is back.
    """
    items = list(items)
    if not items:
        return
    if app.extensions["zhizhi"].settings.inline_jobs:
        from jobs.runner import run_item

        for item_id, _queue, _kind in items:
            run_item(app, item_id)
        return
    for item_id, queue, kind in items:
        enqueue(app, item_id, queue, kind)


def enqueue(app: Flask, item_id: int, queue: str, kind: str) -> bool:
    from jobs.registry import spec_for

    spec = spec_for(kind)
    try:
        get_queue(app, queue).enqueue_call(
            "jobs.runner.execute",
            args=(item_id,),
            job_id=job_id(item_id),
            timeout=spec.timeout,
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
        )
        return True
    except redis.RedisError as exc:
        log.warning("enqueue of outbox %s deferred: %s", item_id, exc)
        return False
