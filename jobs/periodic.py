"""The periodic table: named jobs on cron expressions in Asia/Shanghai.

Rows are data (``Periodic``) registered with ``register_periodic``; the table in
design/jobs.md is filled by the domains that own the work, each from its own job
module (imported by jobs/handlers.py), so nothing here calls a function that does not
exist yet:

| row | cron (Asia/Shanghai) | owner |
|---|---|---|
| outbox reconciler | ``* * * * *`` | jobs (registered below) |
| daily practice reminder | ``30 8 * * *`` | quiz |
| competition notices (1 day / 30 min before) | ``*/5 * * * *`` | quiz |
| credential / permit expiries 30/7/1 days, block at expiry | ``0 9 * * *`` | permits |
| day-before-visit pass reminder | ``0 17 * * *`` | passes |
| warning SLA clocks, escalation | ``0 * * * *`` | warnings |
| risk models, three-colour codes | ``0 2 * * *`` | risk |
| star ratings / worker levels | ``0 3 1 1,4,7,10 *`` | ratings |

A periodic function is ``func(session, now) -> dict | None`` (``now`` = the scheduled
time, UTC); it only flushes. Running a slot twice is prevented per (name, slot): rows
that do work go through the outbox with the dedup key ``periodic:<name>:<slot>`` (a
second scheduler, ``flask jobs run-due`` from cron, a Redis restart: one row, one run,
retried and visible to operators like any job). ``inline`` rows (cheap idempotent
maintenance such as the reconciler) run in the scheduler process under a Redis
``SET NX`` key per slot.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from flask import Flask

from core import outbox
from core.db import utcnow
from jobs.queues import MAINTENANCE, QUEUES
from jobs.registry import job

log = logging.getLogger("zhizhi.jobs")

TZ = ZoneInfo("Asia/Shanghai")
KIND_PREFIX = "periodic."


@dataclass(frozen=True)
class Periodic:
    name: str
    cron: str  # five-field cron in Asia/Shanghai
    func: str  # "package.module:function"
    queue: str = MAINTENANCE
    timeout: int | None = None
    grace: int = 6 * 3600  # a slot missed by more than this is skipped, not caught up
    inline: bool = False
    description: str = ""

    @property
    def kind(self) -> str:
        return f"{KIND_PREFIX}{self.name}"


_TABLE: dict[str, Periodic] = {}


def register_periodic(
    name: str,
    cron: str,
    func: str,
    *,
    queue: str = MAINTENANCE,
    timeout: int | None = None,
    grace: int = 6 * 3600,
    inline: bool = False,
    description: str = "",
) -> Periodic:
    """Add (or replace) a row of the periodic table. ValueError on a bad cron or queue."""
    if not croniter.is_valid(cron):
        raise ValueError(f"periodic {name!r}: invalid cron expression {cron!r}")
    if queue not in QUEUES:
        raise ValueError(f"periodic {name!r}: unknown queue {queue!r}")
    entry = Periodic(name, cron, func, queue, timeout, grace, inline, description)
    _TABLE[name] = entry
    if not inline:
        job(entry.kind, queue=queue, timeout=timeout, max_attempts=3)(_run_outbox_item)
    return entry


def periodic_table() -> list[Periodic]:
    from jobs.registry import all_specs

    all_specs()  # domains register their rows next to their handlers
    return sorted(_TABLE.values(), key=lambda p: p.name)


def resolve(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def latest_slot(entry: Periodic, now: datetime) -> datetime:
    """The latest scheduled time ≤ ``now`` (UTC)."""
    local = now.astimezone(TZ) + timedelta(seconds=1)
    return croniter(entry.cron, local).get_prev(datetime).astimezone(UTC)


def slot_key(entry: Periodic, slot: datetime) -> str:
    return f"periodic:{entry.name}:{slot.astimezone(UTC):%Y%m%dT%H%MZ}"


def run_due(app: Flask, now: datetime | None = None) -> list[tuple[str, str]]:
    """Start every row whose latest slot has not run yet; returns (name, outcome).

    Safe from any number of schedulers at once: outcome ``started`` happens once per
    slot, the others see ``already``."""
    now = now or utcnow()
    out = []
    with app.app_context():
        for entry in periodic_table():
            slot = latest_slot(entry, now)
            if now - slot > timedelta(seconds=entry.grace):
                continue
            outcome = _start_inline(app, entry, slot) if entry.inline else _start_outbox(app, entry, slot)
            out.append((entry.name, outcome))
    return out


def _start_outbox(app: Flask, entry: Periodic, slot: datetime) -> str:
    ext = app.extensions["zhizhi"]
    session = ext.db.sessionmaker()
    try:
        item_id = outbox.add(session, entry.kind, {"slot": slot.isoformat()}, dedup_key=slot_key(entry, slot))
        ext.commit(session)
    finally:
        session.close()
    return "already" if item_id is None else "started"


def _start_inline(app: Flask, entry: Periodic, slot: datetime) -> str:
    ext = app.extensions["zhizhi"]
    ttl = max(entry.grace, 3600) * 2
    if not ext.redis.set(f"{ext.settings.queue_prefix}zhizhi:{slot_key(entry, slot)}", b"1", nx=True, ex=ttl):
        return "already"
    session = ext.db.sessionmaker()
    try:
        resolve(entry.func)(session, slot)
        ext.commit(session)
    except Exception:
        log.exception("periodic %s (%s) failed", entry.name, slot.isoformat())
        session.rollback()
        return "failed"
    finally:
        session.close()
    return "started"


def _run_outbox_item(session, item) -> dict | None:
    """Outbox handler of every non-inline periodic row: call its function for the slot."""
    entry = _TABLE[item.kind.removeprefix(KIND_PREFIX)]
    result = resolve(entry.func)(session, datetime.fromisoformat(item.payload["slot"]))
    return result if isinstance(result, dict) else None


def _reconcile(session, now: datetime) -> dict:
    from flask import current_app

    from jobs.maintenance import reconcile

    return reconcile(current_app._get_current_object())


register_periodic(
    "outbox_reconciler",
    "* * * * *",
    "jobs.periodic:_reconcile",
    inline=True,
    grace=300,
    description="重新派发到期和卡住的后台任务",
)
