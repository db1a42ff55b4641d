"""Who the quiz's periodic work is for: active grid workers, optionally inside an org
subtree, read in keyset batches; and the fan-out of per-batch outbox rows.

Periodic rows (jobs/schedule.py) only list workers and queue one outbox row per batch
(``fan_out``); each batch runs in its own transaction, is retried on its own, and does
nothing twice because every notification carries a dedup key. A district's reminder
is therefore many small jobs, not one long transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from core import outbox
from models.identity import OrgUnit, Person, Role, RoleGrant

BATCH = 500


def worker_batches(
    session: Session,
    *,
    unit_path: str | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    batch: int = BATCH,
) -> Iterator[list[int]]:
    """Ids of active grid workers (optionally whose org unit lies under ``unit_path``,
    the rule ``competitions.enter`` applies), ascending, ``batch`` at a time."""
    stmt = select(Person.id).where(
        Person.active.is_(True),
        exists().where(RoleGrant.person_id == Person.id, RoleGrant.role == Role.grid_worker),
        *where,
    )
    if unit_path is not None:
        stmt = stmt.join(OrgUnit, OrgUnit.id == Person.org_unit_id).where(OrgUnit.path.startswith(unit_path))
    after = 0
    while True:
        ids = list(session.scalars(stmt.where(Person.id > after).order_by(Person.id).limit(batch)))
        if ids:
            yield ids
        if len(ids) < batch:
            return
        after = ids[-1]


def fan_out(
    session: Session, kind: str, payload: dict[str, Any], batches: Iterable[list[int]], key: str
) -> int:
    """One outbox row of ``kind`` per batch (payload + ``ids``), dedup key
    ``{key}:{first}-{last}``; returns how many rows were queued (a re-run adds none for
    the same batches). Flushes."""
    queued = 0
    for ids in batches:
        if outbox.add(session, kind, {**payload, "ids": ids}, dedup_key=f"{key}:{ids[0]}-{ids[-1]}"):
            queued += 1
    return queued
