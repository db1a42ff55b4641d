"""Moving the ledger stream into PostgreSQL (write-behind), and settling it before exact reads.

``drain`` files a batch of stream entries in one transaction, in stream order, doing what
the synchronous path does after filing: the stream's book stock, the waybill step and its
agreement check (mismatch signal and warning), the permit drawdown on ship, the
stocktake variance signal. It is idempotent: an entry whose (enterprise, key) is already
filed is skipped, the insert is ``ON CONFLICT DO NOTHING`` and checked, and drains are
serialised by an advisory lock. Entries are deleted from the stream (``ack``) only after
the commit, so a failed batch stays in the stream and the next drain files it once.

Where the database disagrees with what Redis computed (a stale counter after an outage,
a key filed on the database path meanwhile), the database wins, the event is still filed
(it was accepted: it is never dropped) and the diverged Redis fields are invalidated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import bindparam, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import Unavailable
from models.permits.applications import Permit, PermitStatus
from models.permits.ledger import EventKind, StockBalance, Waybill
from services.permits import hotstate, hotsync, ledger, waybills
from services.permits.hotstate import milli

log = logging.getLogger("zhizhi.permits")

BATCH = 500
LOCK_KEY = 0x7A7A_6C65  # pg_advisory_xact_lock: one drain (or counter load) at a time
DEAD_AFTER = 3  # failures of a lone entry before it moves to the dead-letter stream
SIGN = {"produce": 1, "receive": 1, "ship": -1, "consume": -1, "destroy": -1}


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _int(v: str) -> int | None:
    return int(v) if v != "" else None


@dataclass
class Entry:
    sid: bytes
    id: int
    ent: int
    site: int | None
    chem: int
    kind: str
    milli: int
    unit: str
    occurred: datetime
    actor: int
    wb: int | None
    key: str
    created: datetime
    bal: int | None  # what Redis computed (for comparison)
    pa: int | None
    ta: int | None
    pp: int | None
    tp: int | None
    balance: Decimal | None = None  # what the database computes
    variance: Decimal | None = None
    book: Decimal | None = None

    @property
    def qty(self) -> Decimal:
        return Decimal(self.milli).scaleb(-3)

    def fields(self) -> set[str]:
        out = {f"b{self.ent}:{self.site}:{self.chem}"} if self.site is not None else set()
        out |= {f"w{self.wb}"} if self.wb is not None else set()
        return out | {f"p{p}" for p in (self.pp, self.tp) if p is not None}


def _parse(sid, raw: dict) -> Entry:
    """A stream entry (layout in ``hotstate``: field ``d``, ``|``-separated, the key last)."""
    v = _s(raw[b"d"] if b"d" in raw else raw["d"]).split("|", 18)
    return Entry(
        sid=sid,
        id=int(v[0]),
        bal=_int(v[1]),
        pa=_int(v[4]),
        ta=_int(v[5]),
        pp=_int(v[6]),
        tp=_int(v[7]),
        site=_int(v[8]),
        occurred=datetime.fromisoformat(v[9]),
        ent=int(v[10]),
        chem=int(v[11]),
        kind=v[12],
        milli=int(v[13]),
        unit=v[14],
        actor=int(v[15]),
        wb=_int(v[16]),
        created=datetime.fromisoformat(v[17]),
        key=v[18],
    )


def drain(session: Session, hot, *, upto="+", limit: int = BATCH) -> list:
    """File up to ``limit`` entries of ``hot``'s stream (oldest first, ids <= ``upto``);
    returns their stream ids, to :func:`ack` after the caller commits."""
    session.info[hotsync.DRAINING] = True
    session.execute(text("SET LOCAL lock_timeout = '10s'"))  # never wait for ever on a row lock
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    raw = hot.redis.xrange(hot.keys.stream, min="-", max=upto, count=limit)
    if not raw:
        return []
    heal: set[str] = set()
    fresh = _fresh(session, [_parse(sid, f) for sid, f in raw], heal)
    if fresh:
        wbs = _locked(session, Waybill, {e.wb for e in fresh if e.wb is not None})
        pids = {p for e in fresh if e.kind == "ship" and e.wb in wbs for p in _permits_of(wbs[e.wb])}
        permits = _locked(session, Permit, pids)
        _books(session, fresh, heal)
        _insert(session, fresh)
        for e in fresh:
            if e.wb is not None and e.wb in wbs:
                _step(session, e, wbs[e.wb], permits, heal)
            if e.kind == "stocktake":
                ev = SimpleNamespace(
                    id=e.id, enterprise_id=e.ent, site_id=e.site, chemical_id=e.chem,
                    quantity=e.qty, variance=e.variance,
                )  # fmt: skip
                ledger.check_stocktake(session, ev, e.book, e.created)
        session.flush()
    if heal:
        hotsync.touch(session, heal)
    return [sid for sid, _ in raw]


def ack(hot, ids: list) -> None:
    if ids:
        hot.redis.xdel(hot.keys.stream, *ids)


_FILED = text(
    "SELECT e.enterprise_id, e.idempotency_key, e.id, e.kind, e.chemical_id, e.quantity, e.waybill_id "
    "FROM permit_ledger_events e "
    "JOIN unnest(CAST(:ents AS integer[]), CAST(:keys AS varchar[])) AS k(ent, key) "
    "ON e.enterprise_id = k.ent AND e.idempotency_key = k.key"
)
# One statement with an array per column (fast to send whatever the batch size); the
# unique (enterprise, key) and the primary key make a second filing a no-op.
_INSERT = text(
    "INSERT INTO permit_ledger_events (id, enterprise_id, site_id, chemical_id, kind, quantity, unit, "
    "occurred_at, actor_id, waybill_id, idempotency_key, balance_after, variance, status, created_at) "
    "SELECT i, e, s, c, k, q, u, o, a, w, y, b, v, 'filed', t FROM unnest("
    "CAST(:id AS integer[]), CAST(:ent AS integer[]), CAST(:site AS integer[]), CAST(:chem AS integer[]), "
    "CAST(:kind AS varchar[]), CAST(:qty AS numeric[]), CAST(:unit AS varchar[]), "
    "CAST(:occurred AS timestamptz[]), CAST(:actor AS integer[]), CAST(:wb AS integer[]), "
    "CAST(:key AS varchar[]), CAST(:bal AS numeric[]), CAST(:var AS numeric[]), "
    "CAST(:created AS timestamptz[])) AS r(i, e, s, c, k, q, u, o, a, w, y, b, v, t) "
    "ON CONFLICT DO NOTHING RETURNING id"
)


def _fresh(session: Session, entries: list[Entry], heal: set[str]) -> list[Entry]:
    """Entries not filed yet. A key already filed under another id (filed on the database
    path while Redis was unreachable, or a retry after the fast path's replay window):
    the same event is not filed twice; a different event is filed under a derived key."""
    pairs = list({(e.ent, e.key) for e in entries})
    rows = session.execute(
        _FILED, {"ents": [p[0] for p in pairs], "keys": [p[1] for p in pairs]}
    ).all()  # one statement with two array parameters, whatever the batch size
    known: dict = {(r.enterprise_id, r.idempotency_key): r for r in rows}
    fresh = []
    for e in entries:
        prior = known.get((e.ent, e.key))
        if prior is None:
            known[(e.ent, e.key)] = e
            fresh.append(e)
            continue
        if isinstance(prior, Entry) or prior.id == e.id:
            continue  # filed by an earlier drain whose stream delete did not happen
        heal |= e.fields()
        same = (prior.kind, prior.chemical_id, milli(prior.quantity), prior.waybill_id) == (
            EventKind(e.kind),
            e.chem,
            e.milli,
            e.wb,
        )
        if same:
            log.info("ledger drain: key of event %s already filed as %s; not filed twice", e.id, prior.id)
            continue
        e.key = f"{e.key[:100]}#{e.id}"
        log.warning("ledger drain: key reused by a different event; event %s filed under a derived key", e.id)
        known[(e.ent, e.key)] = e
        fresh.append(e)
    return fresh


def _permits_of(wb: Waybill) -> tuple[int, int]:
    return wb.purchase_permit_id, wb.transport_permit_id


def _locked(session: Session, model, ids: set[int]) -> dict:
    if not ids:
        return {}
    stmt = select(model).where(model.id.in_(ids)).order_by(model.id).with_for_update()
    return {row.id: row for row in session.scalars(stmt.execution_options(populate_existing=True))}


def _books(session: Session, fresh: list[Entry], heal: set[str]) -> None:
    """Move each stream's book stock in event order (locked rows, one statement each way)."""
    t = StockBalance.__table__
    keys = sorted({(e.ent, e.site, e.chem) for e in fresh if e.site is not None})
    if not keys:
        return
    now = utcnow()
    conn = session.connection()
    zero = [dict(zip(("enterprise_id", "site_id", "chemical_id"), k, strict=True)) for k in keys]
    conn.execute(
        pg_insert(t).values([{**z, "quantity": 0, "updated_at": now} for z in zero]).on_conflict_do_nothing()
    )
    pk = (t.c.enterprise_id, t.c.site_id, t.c.chemical_id)
    locked = select(*pk, t.c.quantity).where(tuple_(*pk).in_(keys)).order_by(*pk).with_for_update()
    books = {(r[0], r[1], r[2]): Decimal(r[3]) for r in conn.execute(locked)}
    for e in fresh:
        if e.site is None:
            continue
        k = (e.ent, e.site, e.chem)
        if e.kind == "stocktake":
            e.book, e.variance, books[k] = books[k], e.qty - books[k], e.qty
        else:
            books[k] += SIGN[e.kind] * e.qty
        e.balance = books[k]
        if e.bal is None or milli(books[k]) != e.bal:
            log.warning("ledger drain: book of %s is %s, Redis had %s; resyncing", k, books[k], e.bal)
            heal.add(f"b{k[0]}:{k[1]}:{k[2]}")
    where = [c == bindparam(f"k_{i}") for i, c in enumerate(pk)]
    conn.execute(
        update(t).where(*where).values(quantity=bindparam("k_q"), updated_at=now),
        [{"k_0": k[0], "k_1": k[1], "k_2": k[2], "k_q": q} for k, q in books.items()],
    )


def _insert(session: Session, fresh: list[Entry]) -> None:
    cols = {
        "id": [e.id for e in fresh], "ent": [e.ent for e in fresh], "site": [e.site for e in fresh],
        "chem": [e.chem for e in fresh], "kind": [e.kind for e in fresh], "qty": [e.qty for e in fresh],
        "unit": [e.unit for e in fresh], "occurred": [e.occurred for e in fresh],
        "actor": [e.actor for e in fresh], "wb": [e.wb for e in fresh], "key": [e.key for e in fresh],
        "bal": [e.balance for e in fresh], "var": [e.variance for e in fresh],
        "created": [e.created for e in fresh],
    }  # fmt: skip
    filed = set(session.execute(_INSERT, cols).scalars())
    if filed != {e.id for e in fresh}:
        # Only a concurrent database-path filing of the same key gets here: retry the batch.
        raise RuntimeError("ledger drain: keys filed concurrently; the batch is retried")


def _step(session: Session, e: Entry, wb: Waybill, permits: dict, heal: set[str]) -> None:
    """The waybill step, the permit drawdown (ship) and the agreement check, as
    ``waybills.record_step`` does them; Redis already refused what it had to."""
    field = waybills.STEP_FIELD[EventKind(e.kind)]
    if getattr(wb, field) is not None:
        log.warning("ledger drain: waybill %s step %s reported twice (event %s)", wb.id, field, e.id)
        heal.add(f"w{wb.id}")
        return
    setattr(wb, field, e.qty)
    if e.kind == "ship":
        for pid, after in zip(_permits_of(wb), (e.pa, e.ta), strict=True):
            permit = permits[pid]
            permit.remaining = Decimal(permit.remaining) - e.qty
            if permit.status != PermitStatus.valid or after is None or milli(permit.remaining) != after:
                log.warning(
                    "ledger drain: permit %s at %s after event %s; resyncing", pid, permit.remaining, e.id
                )
                heal.add(f"p{pid}")
    waybills.check_agreement(session, wb, e.created)


# --- settling ---------------------------------------------------------------------


def _drain_upto(hot, upto, batch: int = BATCH) -> int:
    moved = 0
    while True:
        s = hot.db.sessionmaker()
        try:
            ids = drain(s, hot, upto=upto, limit=batch)
            hot.ext.commit(s)  # commits, then hands new outbox rows (warnings) to the queue
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()
        ack(hot, ids)
        moved += len(ids)
        if len(ids) < batch:
            return moved


def settle(hot, *, batch: int = BATCH) -> int:
    """File every entry accepted before this call (Redis errors propagate)."""
    last = hot.redis.xrevrange(hot.keys.stream, count=1)
    return _drain_upto(hot, last[0][0], batch) if last else 0


def settle_for(session: Session) -> int:
    """Settle the stream of the app whose database ``session`` uses, if Redis can be
    reached (the database path, tools and tests; Redis down: nothing can be drained)."""
    hot = hotsync.for_session(session)
    if hot is None or not hot.redis_ok():
        return 0
    try:
        return settle(hot)
    except hotstate.REDIS_DOWN as exc:
        hot.trip(exc)
        return 0


def before_read(app) -> int:
    """Reads that must be exact call this first: pending filings land in the database.
    Without Redis (embedded mode) there is nothing pending; with Redis unreachable the
    read cannot be exact and is refused (503, retry)."""
    hot = hotsync.for_app(app)
    if hot is None:
        return 0
    if hot.redis_ok():
        try:
            return settle(hot)
        except hotstate.REDIS_DOWN as exc:
            hot.trip(exc)
    raise Unavailable("台账同步服务暂不可用，请稍后重试", code="ledger_sync_unavailable")


def flush(app, *, batch: int = BATCH) -> int:
    """The periodic flush: settle the stream. An entry that the database refuses on its own
    (not an outage: a constraint, a bad value) ``DEAD_AFTER`` times moves to the
    dead-letter stream (kept in Redis, logged as an error) so the rest keeps flowing."""
    hot = hotsync.for_app(app)
    if hot is None:
        return 0
    last = hot.redis.xrevrange(hot.keys.stream, count=1)
    if not last:
        return 0
    try:
        return _drain_upto(hot, last[0][0], batch)
    except Exception:
        log.exception("ledger drain failed; retrying the oldest entry alone")
    try:
        return _drain_upto(hot, last[0][0], 1)
    except (OperationalError, *hotstate.REDIS_DOWN):
        log.exception("ledger drain failed (database or Redis unavailable); entries kept for the next run")
        return 0
    except Exception as exc:  # noqa: BLE001 - a permanent failure: the entry is kept and reported
        first = hot.redis.xrange(hot.keys.stream, count=1)
        fails = f"{hot.keys.tag}fail:{_s(first[0][0])}" if first else ""
        if first and hot.redis.incr(fails) >= DEAD_AFTER:
            sid, fields = first[0]
            pipe = hot.redis.pipeline(transaction=True)
            pipe.xadd(hot.keys.dead, {**fields, "error": repr(exc)[:500], "sid": sid})
            pipe.xdel(hot.keys.stream, sid)
            pipe.delete(fails)
            pipe.execute()
            log.error("ledger entry %s moved to the dead-letter stream %s: %r", _s(sid), hot.keys.dead, exc)
        elif first:
            hot.redis.expire(fails, 24 * 3600)
        return 0
