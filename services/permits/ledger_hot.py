"""Ledger filing, the hot path: validate against caches, then one Redis call (write-behind).

``HotLedger.file`` checks what the synchronous path (``ledger.file_event``) checks, in the
same order and with the same errors: event kind, membership and role, catalogue and
quantity from process caches; then one EVALSHA (``hotstate.FILE_LUA``) that atomically
replays or refuses a used idempotency key, checks the waybill step, draws the permits
down, moves the stream's book stock and XADDs the event. ``ledger_drain`` files the stream
into PostgreSQL. The answer carries the final event id (reserved from the database
sequence in blocks). When Redis cannot be reached ``file`` returns None and the caller
files synchronously; a breaker then skips Redis for a few seconds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from flask import Response
from sqlalchemy import select, text

from core.db import utcnow
from core.errors import Conflict, DomainError, Forbidden, NotFound, Unavailable, ValidationFailed
from models.permits.applications import Permit
from services.permits import catalogue, hotstate
from services.permits.hotcache import Caches, read_fields
from services.permits.hotstate import milli, qty_text
from services.permits.ledger import ROLES
from services.permits.waybills import STEP_FIELD, STEP_NAMES

log = logging.getLogger("zhizhi.permits")

BREAKER_SECONDS = 5.0
MAX_ROUNDS = 6
ID_BLOCK = 200
TRANSIT = ("depart", "arrive")
ON_WAYBILL = ("depart", "arrive", "ship", "receive")
MODE = {"produce": "+", "receive": "+", "ship": "-", "consume": "-", "destroy": "-", "stocktake": "="}


@dataclass
class Plan:
    enterprise_id: int
    kind: str
    chemical_id: int
    quantity: Decimal
    milli: int
    unit: str
    site_id: int | None
    waybill_id: int | None
    key: str
    occurred: str
    dedup: str
    args: list


class HotLedger:
    """The per-app hot path: its caches and its Redis breaker."""

    def __init__(self, app) -> None:
        self.ext = app.extensions["zhizhi"]
        self.caches = Caches()
        self._down_until = 0.0
        self._keys: hotstate.Keys | None = None

    @property
    def keys(self) -> hotstate.Keys:
        """Key names of this app's database (its oid, read once)."""
        if self._keys is None:
            with self.db.engine.connect() as conn:
                oid = conn.scalar(text("SELECT oid FROM pg_database WHERE datname = current_database()"))
            self._keys = hotstate.Keys(f"db{oid}")
        return self._keys

    @property
    def redis(self):
        return self.ext.redis

    @property
    def db(self):
        return self.ext.db

    def redis_ok(self) -> bool:
        return time.monotonic() >= self._down_until

    def trip(self, exc: BaseException) -> None:
        log.warning("permits hot path: Redis unavailable (%s); filing synchronously", type(exc).__name__)
        self._down_until = time.monotonic() + BREAKER_SECONDS

    def tell(self, fn: Callable) -> bool:
        """Run ``fn(redis, keys)`` unless Redis is known to be down; False if it could not."""
        if not self.redis_ok():
            return False
        try:
            fn(self.redis, self.keys)
        except hotstate.REDIS_DOWN as exc:
            self.trip(exc)
            return False
        return True

    # --- filing -------------------------------------------------------------------

    def file(self, actor, enterprise_id: int, body) -> Response | None:
        """File ``body`` (an ``EventIn``); the 201 answer, a DomainError, or None when Redis
        is unavailable (nothing was accepted: file synchronously). Cache misses read the
        database in short sessions of their own (the request opens none)."""
        if not self.redis_ok():
            return None
        db = self.db.session
        now = utcnow()
        try:
            for _ in range(MAX_ROUNDS):
                try:
                    plan = self._plan(db, actor, enterprise_id, body, now)
                except DomainError:
                    # Refused from the caches: only if they are current (one GET, refusals only).
                    current = (self.redis.get(self.keys.ver) or b"0").decode()
                    if current == self.caches.version:
                        raise
                    self.caches.reset(current)
                    continue
                reply = hotstate.run_file(self.redis, self.keys, plan.dedup, plan.args)
                if reply[0] == "stale":
                    self.caches.reset(reply[1])
                elif reply[0] == "sync":
                    self._load(reply[1], reply[2:])
                elif reply[0] == "ids":
                    self._refill()
                else:
                    return self._answer(db, plan, reply)
        except hotstate.REDIS_DOWN as exc:
            self.trip(exc)
            return None
        raise Unavailable("台账繁忙，请使用同一幂等键重试")

    def _plan(self, db, actor, enterprise_id: int, b, now: datetime) -> Plan:
        kind = b.kind
        if kind not in ROLES:
            raise ValidationFailed(code="invalid_event_kind", fields={"kind": "事件类型无效"})
        c = self.caches
        roles = c.roles(db, actor.person_id, enterprise_id)
        if not roles:
            if not actor.has_role("admin"):
                raise Forbidden("您不是该企业的成员", code="not_enterprise_member")
            if not c.enterprise_exists(db, enterprise_id):
                raise NotFound("企业不存在", code="enterprise_not_found")
        elif not roles & ROLES[kind]:
            raise Forbidden("您的企业角色不能报送此类事件", code="enterprise_role_required")
        chem = c.chemical(db, b.chemical_id)
        if chem is None:
            msg = "化学品不在易制毒化学品目录中"
            raise ValidationFailed(msg, code="unknown_chemical", fields={"chemical_id": "目录中无此化学品"})
        catalogue.check_quantity(chem, b.quantity, b.unit)
        m = milli(b.quantity)
        static, site, step, pp, tp = "", None, "", "", ""
        if kind not in TRANSIT:
            site = c.site(db, enterprise_id, b.site_id)
            if site is None:
                static = "site_not_owned"
        wb = b.waybill_id
        if not static and wb is None and kind in ON_WAYBILL:
            static = "waybill_required"
        elif not static and wb is not None:
            info = c.waybill(db, wb)
            if info is None:
                static = "waybill_not_found"
            else:
                party = {"ship": info.seller, "receive": info.buyer}.get(kind, info.carrier)
                ok = kind in hotstate.STEP_INDEX and enterprise_id == party and b.chemical_id == info.chemical
                step = str(hotstate.STEP_INDEX[kind]) if ok else "0"
                if ok and kind == "ship":
                    pp, tp = str(info.purchase_permit), str(info.transport_permit)
        given = b.occurred_at.astimezone(UTC).isoformat() if b.occurred_at else ""
        accepted = now.isoformat()
        occurred = given or accepted
        fp = hotstate.fingerprint(kind, b.chemical_id, m, b.unit, site, wb, given)
        key = b.idempotency_key
        stream = site is not None and not static
        bal = hotstate.bal_field(enterprise_id, site, b.chemical_id) if stream else ""
        args = [
            c.version or "", fp, hotstate.DEDUP_TTL, static, bal, MODE.get(kind, ""), m,
            "" if wb is None or static else wb, step, pp, tp, occurred, "" if site is None else site,
            hotstate.entry(enterprise_id, b.chemical_id, kind, m, b.unit, actor.person_id, wb, accepted, key),
        ]  # fmt: skip
        return Plan(
            enterprise_id, kind, b.chemical_id, b.quantity, m, b.unit, site, wb, key, occurred,
            self.keys.dedup(enterprise_id, key), args,
        )  # fmt: skip

    def _answer(self, db, plan: Plan, reply: list) -> Response:
        what = reply[0]
        if what == "new":
            _, event_id, bal, var = reply
            return _created(data(plan, event_id, plan.site_id, bal, var, plan.occurred, True))
        if what == "dup":
            _fp, event_id, site, bal, var, occurred = reply[1].split("|", 5)
            return _created(data(plan, event_id, site, bal, var, occurred, False))
        if what == "reused":
            raise Conflict("该幂等键已用于另一条事件", code="idempotency_key_reused")
        raise refusal(db, plan, reply[1], reply[2:])

    # --- state the script asked for -------------------------------------------------

    def _load(self, inv: str, missing: list[str]) -> None:
        """Drain what was accepted, read the missing fields from the database, keep them
        unless an invalidation happened meanwhile (then the next round asks again)."""
        from services.permits import ledger_drain

        try:
            ledger_drain.settle(self)
        except hotstate.REDIS_DOWN:
            raise
        except Exception:
            log.exception("ledger drain failed before loading hot-path state")
            raise Unavailable("台账同步中，请使用同一幂等键重试") from None
        with self.db.session() as s:
            values = read_fields(s, missing)
        hotstate.store_loaded(self.redis, self.keys, inv, values)

    def _refill(self) -> None:
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    text(
                        "SELECT nextval(pg_get_serial_sequence('permit_ledger_events', 'id')) "
                        "FROM generate_series(1, :n)"
                    ),
                    {"n": ID_BLOCK},
                )
            )
        self.redis.rpush(self.keys.ids, *ids)


def _created(d: dict) -> Response:
    """``core.api.envelope`` byte for byte (``d`` holds only JSON values), without its walk."""
    body = json.dumps({"ok": True, "data": d}, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=201, mimetype="application/json")


def data(plan: Plan, event_id, site, bal: str, var: str, occurred: str, created: bool) -> dict:
    """The answer's data, field for field what ``views.event`` shows for the filed row."""
    return {
        "id": int(event_id),
        "kind": plan.kind,
        "status": "filed",
        "site_id": int(site) if site not in (None, "") else None,
        "chemical_id": plan.chemical_id,
        "quantity": qty_text(plan.milli),
        "unit": plan.unit,
        "occurred_at": occurred,
        "waybill_id": plan.waybill_id,
        "balance_after": qty_text(bal) if bal != "" else None,
        "variance": qty_text(var) if var != "" else None,
        "corrects_id": None,
        "idempotency_key": plan.key,
        "created": created,
    }


def refusal(db, plan: Plan, code: str, args: list) -> DomainError:
    """The error the synchronous path raises for ``code`` (same code, message, fields)."""
    if code == "site_not_owned":
        return ValidationFailed("场所不属于本企业", code=code, fields={"site_id": "场所不属于本企业"})
    if code == "waybill_required":
        msg = "发货、起运、到达、收货事件必须关联运单"
        return ValidationFailed(msg, code=code, fields={"waybill_id": "必填"})
    if code == "waybill_not_found":
        return NotFound("运单不存在", code=code)
    if code == "waybill_closed":
        return Conflict("运单已闭环，不能再报送", code=code)
    if code == "waybill_party_mismatch":
        msg = "事件与运单的当事方或化学品不符"
        return ValidationFailed(msg, code=code, fields={"waybill_id": "当事方不符"})
    if code == "waybill_step_already_reported":
        from models.permits.ledger import EventKind

        return Conflict(f"该运单已报送{STEP_NAMES[STEP_FIELD[EventKind(plan.kind)]]}", code=code)
    if code == "quantity_over_permit":
        with db() as s:
            number = s.scalar(select(Permit.number).where(Permit.id == int(args[0])))
        msg = f"数量 {plan.quantity} 超过许可/备案 {number} 剩余量 {qty_text(args[1].lstrip('x'))}"
        return ValidationFailed(msg, code=code, fields={"quantity": msg})
    if code == "stock_insufficient":
        msg = f"库存不足：账面 {qty_text(args[0])}，本次 {qty_text(plan.milli)}"
        return ValidationFailed(msg, code=code, fields={"quantity": msg})
    if code == "invalid_value":
        return DomainError("提交的数值超出允许范围", code=code, status=422)
    raise RuntimeError(f"unknown refusal {code!r} from the filing script")
