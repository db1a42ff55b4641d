"""Keep the ledger hot path's Redis state in step with database writes made elsewhere.

The hot path (``ledger_hot``) is on when the app has a real Redis and PostgreSQL; the
embedded mode (no Redis: fakeredis, or SQLite) files synchronously and nothing here runs.

Any database write to state the hot path caches — a member, site, chemical or enterprise
(process caches: bump ``ver``), a permit, a waybill or a stock balance (Redis fields) —
is told to Redis when flushed (so readers in the same transaction see it) and again after
commit (so a load that read the database before the commit is thrown away). If Redis
cannot be told, the commit carries an outbox row (``permits.hot_resync``) that tells it
once it is back. Events filed synchronously also publish their first answer (the
idempotency record) after commit, so a retry on the hot path replays them.
"""

from __future__ import annotations

import logging
import weakref
from itertools import chain
from typing import TYPE_CHECKING

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from core import outbox
from models.permits.applications import Permit
from models.permits.catalogue import Chemical
from models.permits.enterprises import Enterprise, Member, Site
from models.permits.ledger import StockBalance, Waybill
from services.permits import hotstate

if TYPE_CHECKING:
    from services.permits.ledger_hot import HotLedger

log = logging.getLogger("zhizhi.permits")

RESYNC_JOB = "permits.hot_resync"
DRAINING = "permits_hot_draining"  # session.info flag: the drain's own writes mirror Redis
_PENDING = "permits_hot_pending"
_by_engine: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_state = {"listening": False}


def install(app) -> HotLedger | None:
    """Turn the hot path on for ``app`` if it has a real Redis and PostgreSQL."""
    ext = app.extensions["zhizhi"]
    if not ext.settings.redis_url or ext.db.engine.dialect.name != "postgresql":
        return None
    from services.permits.ledger_hot import HotLedger

    hot = HotLedger(app)
    app.extensions["permits_hot"] = hot
    _by_engine[ext.db.engine] = hot
    if not _state["listening"]:
        sa_event.listen(Session, "after_flush", _after_flush)
        sa_event.listen(Session, "before_commit", _before_commit)
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_soft_rollback", _after_soft_rollback)
        _state["listening"] = True
    return hot


def for_app(app) -> HotLedger | None:
    return app.extensions.get("permits_hot")


def for_session(session: Session) -> HotLedger | None:
    try:
        bind = session.get_bind()
    except Exception:  # noqa: BLE001 - an unbound session has nothing cached
        return None
    return _by_engine.get(getattr(bind, "engine", bind))


def touch(session: Session, fields=(), *, bump: bool = False, dedup=None) -> None:
    """Invalidate ``fields`` (``b…``/``p…``/``w…``) and/or the caches' version now and after
    commit; ``dedup`` = (enterprise, key, record) published after commit."""
    hot = for_session(session)
    if hot is None:
        return
    p = session.info.setdefault(_PENDING, {"fields": set(), "bump": False, "dedup": [], "failed": False})
    p["fields"] |= set(fields)
    p["bump"] = p["bump"] or bump
    if dedup is not None:
        p["dedup"].append((session.get_nested_transaction() or session.get_transaction(), dedup))
    if fields or bump:
        if not hot.tell(lambda r, k: hotstate.invalidate(r, k, fields, bump=bump)):
            p["failed"] = True
    elif not hot.redis_ok():
        p["failed"] = True  # the answer cannot be published after commit either


def _payload(p: dict) -> dict:
    return {
        "fields": sorted(p["fields"]),
        "bump": p["bump"],
        "dedup": [list(d) for _tx, d in p["dedup"]],
    }


def _after_flush(session: Session, _ctx) -> None:
    if session.info.get(DRAINING) or for_session(session) is None:
        return
    fields, bump = set(), False
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, Member | Site | Chemical) or (
            isinstance(obj, Enterprise) and obj not in session.dirty
        ):
            bump = True
        elif obj in session.new:
            continue  # nothing cached about a row that did not exist
        elif isinstance(obj, Permit):
            fields.add(f"p{obj.id}")
        elif isinstance(obj, Waybill):
            fields.add(f"w{obj.id}")
        elif isinstance(obj, StockBalance):
            fields.add("b" + f"{obj.enterprise_id}:{obj.site_id}:{obj.chemical_id}")
    if fields or bump:
        touch(session, fields, bump=bump)


def _before_commit(session: Session) -> None:
    p = session.info.get(_PENDING)
    if p and p["failed"] and not p.get("queued"):
        p["queued"] = True
        outbox.add(session, RESYNC_JOB, _payload(p))


def _after_commit(session: Session) -> None:
    p = session.info.pop(_PENDING, None)
    if not p or p.get("queued"):
        return
    hot = for_session(session)
    if hot is None:
        return
    payload = _payload(p)
    if hot.tell(lambda r, k: apply(r, k, payload)):
        return
    try:  # Redis went away between flush and commit: leave the work to a job
        with hot.db.session() as s:
            outbox.add(s, RESYNC_JOB, payload)
    except Exception:
        log.exception("could not queue the permits hot-state resync")


def _after_soft_rollback(session: Session, previous_transaction) -> None:
    """Forget answers of events filed in the rolled-back transaction (or savepoint).
    Invalidations already sent stay sent: forgetting a cached value is always safe."""
    p = session.info.get(_PENDING)
    if not p:
        return

    def inside(tx) -> bool:
        if tx is None:
            return previous_transaction.parent is None
        while tx is not None:
            if tx is previous_transaction:
                return True
            tx = tx.parent
        return False

    p["dedup"] = [(tx, d) for tx, d in p["dedup"] if not inside(tx)]
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def apply(redis, keys: hotstate.Keys, payload: dict) -> None:
    """Tell Redis what ``payload`` (see ``_payload``) says; idempotent."""
    if payload["fields"] or payload["bump"]:
        hotstate.invalidate(redis, keys, payload["fields"], bump=payload["bump"])
    if payload["dedup"]:
        hotstate.publish_dedup(redis, keys, payload["dedup"])
