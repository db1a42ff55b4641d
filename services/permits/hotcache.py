"""What the ledger hot path caches: in the process, memberships, enterprises, sites and the
catalogue (valid while Redis ``ver`` is unchanged) and waybill parties (never change);
in Redis, books, permits and waybill steps, read from the database by ``read_fields``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.permits.applications import Permit, PermitStatus
from models.permits.catalogue import Chemical
from models.permits.enterprises import Enterprise, Member, MemberStatus, Site
from models.permits.ledger import StockBalance, Waybill, WaybillStatus
from services.permits.hotstate import milli

MAX_ENTRIES = 100_000  # per map
LETTER = {WaybillStatus.open: "o", WaybillStatus.mismatch: "m", WaybillStatus.closed: "c"}
DB = Callable[[], AbstractContextManager[Session]]  # a short unit of work (Database.session)


@dataclass(frozen=True)
class _Chem:
    unit: str


@dataclass(frozen=True)
class WaybillInfo:
    seller: int
    buyer: int
    carrier: int
    chemical: int
    purchase_permit: int
    transport_permit: int


class Caches:
    """Memberships, enterprises, sites and the catalogue, valid while Redis ``ver`` is
    unchanged (a database change to any of them bumps it). A load that started before a
    reset is not kept (generation check), so a reset always ends in fresh values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version: str | None = None
        self.gen = 0
        self._maps: dict[str, dict] = {"roles": {}, "ents": {}, "sites": {}, "chems": {}}
        self.waybills: dict[int, WaybillInfo] = {}  # parties never change once created

    def reset(self, version: str) -> None:
        with self._lock:
            self.gen += 1
            self.version = version
            self._maps = {"roles": {}, "ents": {}, "sites": {}, "chems": {}}
            self.waybills = {}

    def _get(self, name: str, key, load: Callable[[], object]):
        maps = self._maps
        if key in maps[name]:
            return maps[name][key]
        gen = self.gen
        value = load()
        with self._lock:
            if self.gen == gen:
                if len(self._maps[name]) >= MAX_ENTRIES:  # ids probed at random stay bounded
                    self._maps[name] = {}
                self._maps[name][key] = value
        return value

    def roles(self, db: DB, person_id: int, enterprise_id: int) -> frozenset[str]:
        def load() -> frozenset[str]:
            stmt = select(Member.role).where(
                Member.enterprise_id == enterprise_id,
                Member.person_id == person_id,
                Member.status == MemberStatus.active,
            )
            with db() as s:
                return frozenset(str(r) for r in s.scalars(stmt))

        return self._get("roles", (person_id, enterprise_id), load)

    def enterprise_exists(self, db: DB, enterprise_id: int) -> bool:
        def load() -> bool:
            with db() as s:
                return s.get(Enterprise, enterprise_id) is not None

        return self._get("ents", enterprise_id, load)

    def site(self, db: DB, enterprise_id: int, site_id: int | None) -> int | None:
        def load() -> tuple[int, ...]:
            with db() as s:
                return tuple(
                    s.scalars(select(Site.id).where(Site.enterprise_id == enterprise_id).order_by(Site.id))
                )

        ids = self._get("sites", enterprise_id, load)
        if site_id is not None:
            return site_id if site_id in ids else None
        return ids[0] if ids else None

    def chemical(self, db: DB, chemical_id: int) -> _Chem | None:
        def load() -> _Chem | None:
            with db() as s:
                chem = s.get(Chemical, chemical_id)
                return _Chem(chem.unit) if chem is not None and chem.active else None

        return self._get("chems", chemical_id, load)

    def waybill(self, db: DB, waybill_id: int) -> WaybillInfo | None:
        info = self.waybills.get(waybill_id)
        if info is None:
            gen, w = self.gen, Waybill
            cols = (
                w.seller_id,
                w.buyer_id,
                w.carrier_id,
                w.chemical_id,
                w.purchase_permit_id,
                w.transport_permit_id,
            )
            with db() as s:
                row = s.execute(select(*cols).where(w.id == waybill_id)).first()
            if row is None:
                return None  # not cached: the waybill may be created later
            info = WaybillInfo(*row)
            with self._lock:
                if self.gen == gen:  # not loaded before a reset
                    if len(self.waybills) >= MAX_ENTRIES:
                        self.waybills = {}
                    self.waybills[waybill_id] = info
        return info


def read_fields(session: Session, missing: list[str]) -> dict[str, str]:
    """Database values of the Redis fields the filing script found missing."""
    out = {}
    for f in missing:
        rest = f[1:]
        if f[0] == "b":
            e, s, c = (int(x) for x in rest.split(":"))
            t = StockBalance
            where = (t.enterprise_id == e, t.site_id == s, t.chemical_id == c)
            q = session.scalar(select(t.quantity).where(*where))
            out[f] = str(milli(q or 0))
        elif f[0] == "p":
            stmt = select(Permit.remaining, Permit.status).where(Permit.id == int(rest))
            row = session.execute(stmt).first()
            valid = row is not None and row.status == PermitStatus.valid
            out[f] = ("" if valid else "x") + str(milli(row.remaining if row else 0))
        else:
            w = Waybill
            row = session.execute(
                select(w.status, w.shipped, w.departed, w.arrived, w.received).where(w.id == int(rest))
            ).first()
            flags = "" if row is None else "".join("0" if v is None else "1" for v in row[1:])
            out[f] = "c0000" if row is None else LETTER[row[0]] + flags
    return out
