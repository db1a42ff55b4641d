"""Demo permits data: four enterprises, a quarter of flows and one planted anomaly per model.

Parties (all in 桐乡市): a producer (甲化工), a trader (乙贸易), a user (丙制药) and a
carrier (丁物流) with two vehicles and two drivers. Flows over the 91 days before the
seed: the producer makes toluene daily, sells weekly to the trader, who sells weekly to
the user; every delivery has a purchase filing, a transport filing, a waybill closed by
all three parties and a 2-hour trip. Planted anomalies (``PLANTED``) and the colour each
enterprise shows afterwards (``EXPECTED_COLOURS``) are documented here and tested.
Idempotent: a second run finds the producer and changes nothing. Manager logins:
ent_producer / ent_trader / ent_user / ent_carrier, password ``DEMO_PASSWORD``.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import load_actor
from core.config import Settings
from core.db import utcnow
from core.validators import uscc_check_char
from models.identity import StaffLogin
from models.permits.catalogue import Chemical
from models.permits.enterprises import Enterprise
from models.permits.ledger import TripSegment
from services.auth import hash_password
from services.demo.foundation import add_person, org_by_code
from services.permits import (
    applications,
    catalogue,
    credentials,
    enterprises,
    ledger,
    periodic,
    risk,
    waybills,
)
from services.permits.issuing import local_date

CATALOGUE_CSV = Path(__file__).resolve().parents[2] / "data" / "precursor_chemicals.csv"
SHARED_CSV = Path("/work/shared/data/precursor_chemicals.csv")
TOLUENE = "108-88-3"
DAYS = 91

# key, name, kind, org code, manager username
ENTERPRISES = [
    ("producer", "嘉兴甲化工有限公司", "producer", "330483101", "ent_producer"),
    ("trader", "桐乡乙化学品贸易有限公司", "trader", "330483001", "ent_trader"),
    ("user", "乌镇丙制药有限公司", "user", "330483101", "ent_user"),
    ("carrier", "桐乡丁危险货物运输有限公司", "carrier", "330483001", "ent_carrier"),
]
DEMO_PASSWORD = "Enterprise@2026"  # noqa: S105 - demo accounts only

#: (enterprise, risk model, signal severity, how it is planted)
PLANTED = [
    ("producer", "production_surge", "yellow", "last 7 days 500 kg/day against 100 kg/day before"),
    ("trader", "mass_balance", "yellow", "stocktake yesterday counts 10% below the book"),
    ("user", "consumption_anomaly", "yellow", "last 7 days 150 kg/day against 30 kg/day before"),
    (
        "user",
        "cumulative_purchase",
        "yellow",
        "2,000 kg bought directly from the producer on top of the trader",
    ),
    ("carrier", "fatigue_driving", "yellow", "5 h continuous daytime driving 3 days ago"),
    ("carrier", "credential_lapse", "red", "vehicle 2 driven 5 days ago, inspection expired 10 days ago"),
]
EXPECTED_COLOURS = {"producer": "yellow", "trader": "yellow", "user": "yellow", "carrier": "red"}


def _uscc(n: int) -> str:
    first17 = f"91330483MA2D{n:05d}"[:17]
    return first17 + uscc_check_char(first17)


class _Demo:
    def __init__(self, session: Session, settings: Settings, now: datetime) -> None:
        self.s, self.kek, self.now = session, settings.signing_kek, now
        self.rng = random.Random(6)
        self.ent: dict[str, Enterprise] = {}
        self.mgr: dict[str, object] = {}
        self.keys = 0

    def actor(self, person):
        return load_actor(self.s, person.id)

    def at(self, day: int, hour: int = 0) -> datetime:
        return self.now - timedelta(days=-day) + timedelta(hours=hour)

    def key(self) -> str:
        self.keys += 1
        return f"demo-{self.keys:05d}"

    def enterprises(self) -> None:
        today = local_date(self.now)
        for i, (key, name, kind, org_code, username) in enumerate(ENTERPRISES, start=1):
            org = org_by_code(self.s, org_code)
            mgr = add_person(self.s, f"{name[2:4]}专管员", org_code, self.rng)
            self.s.add(
                StaffLogin(person_id=mgr.id, username=username, password_hash=hash_password(DEMO_PASSWORD))
            )
            self.s.flush()
            ent = enterprises.register(
                self.s,
                self.actor(mgr),
                name=name,
                uscc=_uscc(i),
                kind=kind,
                org_unit_id=org.id if org else None,
                sites=["一号仓库"],
            )
            for cat in (2, 3):
                credentials.add_credential(
                    self.s,
                    self.actor(mgr),
                    ent.id,
                    kind="enterprise_licence",
                    number=f"(浙)3J{i}{cat}0001",
                    valid_until=today + timedelta(days=400),
                    category=cat,
                )
            self.ent[key], self.mgr[key] = ent, mgr

    def fleet(self) -> None:
        today = local_date(self.now)
        cm = self.actor(self.mgr["carrier"])
        cid = self.ent["carrier"].id
        self.drivers, self.vehicles = [], []
        for n, (plate, dq_days) in enumerate((("浙F3A101", 7), ("浙F3A102", 300)), start=1):
            driver = add_person(self.s, f"驾驶员{n}", "330483001", self.rng)
            enterprises.add_member(self.s, cm, cid, driver.id, "driver")
            vehicle = credentials.add_vehicle(self.s, cm, cid, plate, "yellow")
            reg_until = today - timedelta(days=10) if n == 2 else today + timedelta(days=200)
            rtc_until = today + timedelta(days=30) if n == 1 else today + timedelta(days=200)
            for kind, until, vid, pid in (
                ("vehicle_registration", reg_until, vehicle.id, None),
                ("road_transport", rtc_until, vehicle.id, None),
                ("driving_licence", today + timedelta(days=900), None, driver.id),
                ("driver_qualification", today + timedelta(days=dq_days), None, driver.id),
            ):
                credentials.add_credential(
                    self.s,
                    cm,
                    cid,
                    kind=kind,
                    number=f"{kind[:3].upper()}-{n}",
                    valid_until=until,
                    vehicle_id=vid,
                    person_id=pid,
                )
            self.drivers.append(driver)
            self.vehicles.append(vehicle)

    def event(self, who: str, kind: str, qty: float, day: int, hour: int = 0, waybill_id=None, person=None):
        when = self.at(day, hour)
        ledger.file_event(
            self.s,
            self.actor(person or self.mgr[who]),
            self.ent[who].id,
            kind=kind,
            chemical_id=self.chem.id,
            quantity=Decimal(str(qty)),
            unit="kg",
            idempotency_key=self.key(),
            occurred_at=when,
            waybill_id=waybill_id,
            now=when,
        )

    def purchase(self, buyer: str, seller: str, qty: int, day: int):
        _app, permit = applications.apply_purchase(
            self.s,
            self.actor(self.mgr[buyer]),
            enterprise_id=self.ent[buyer].id,
            seller_enterprise_id=self.ent[seller].id,
            chemical_id=self.chem.id,
            quantity=Decimal(qty),
            unit="kg",
            kek=self.kek,
            now=self.at(day),
        )
        return permit

    def deliver(self, seller: str, buyer: str, pp, qty: int, day: int) -> None:
        n = day % 2
        when = self.at(day, 1)
        d = local_date(when)
        _app, tp = applications.apply_transport(
            self.s,
            self.actor(self.mgr[buyer]),
            enterprise_id=self.ent[buyer].id,
            purchase_permit_id=pp.id,
            carrier_enterprise_id=self.ent["carrier"].id,
            vehicle_id=self.vehicles[0].id,
            plate=self.vehicles[0].plate,
            driver_id=self.drivers[n].id,
            escort_id=None,
            quantity=Decimal(qty),
            unit="kg",
            window_start=d,
            window_end=d + timedelta(days=1),
            kek=self.kek,
            now=when,
        )
        wb = waybills.create(
            self.s, self.actor(self.mgr[seller]), tp.id, quantity=Decimal(qty), eta=self.at(day, 4)
        )
        self.event(seller, "ship", qty, day, 1, wb.id)
        self.event("carrier", "depart", qty, day, 1, wb.id, person=self.drivers[n])
        self.trip(n, 0, day, 1, 2)
        self.event("carrier", "arrive", qty, day, 3, wb.id, person=self.drivers[n])
        self.event(buyer, "receive", qty, day, 3, wb.id)
        waybills.close(self.s, self.actor(self.mgr[buyer]), wb.id, now=self.at(day, 3))

    def trip(self, driver: int, vehicle: int, day: int, hour: float, hours: float) -> None:
        start = self.at(day) + timedelta(hours=hour)
        self.s.add(
            TripSegment(
                enterprise_id=self.ent["carrier"].id,
                driver_id=self.drivers[driver].id,
                vehicle_id=self.vehicles[vehicle].id,
                started_at=start,
                ended_at=start + timedelta(hours=hours),
            )
        )

    def flows(self) -> None:
        trader_pp = self.purchase("trader", "producer", 300 * 13, -DAYS)
        user_pp = self.purchase("user", "trader", 250 * 13, -89)
        for day in range(-DAYS, 0):
            self.event("producer", "produce", 1000 if day == -DAYS else (500 if day >= -7 else 100), day)
            if (day + 90) % 7 == 0 and day <= -6:
                self.deliver("producer", "trader", trader_pp, 300, day)
            if (day + 88) % 7 == 0:
                self.deliver("trader", "user", user_pp, 250, day)
            if day == -6:
                self.deliver("producer", "user", self.purchase("user", "producer", 2000, -7), 2000, day)
            if day >= -88:
                self.event("user", "consume", 150 if day >= -7 else 30, day, 5)

    def anomalies(self) -> None:
        book = self._book("trader")
        self.event("trader", "stocktake", float(book * Decimal("0.9")), -1, 6)
        # A 08:30 (Asia/Shanghai) start: daytime rules apply.
        start_hour = (
            24 + 8.5 - self.at(-3).astimezone(risk.TZ).hour - self.at(-3).astimezone(risk.TZ).minute / 60
        ) % 24
        self.trip(1, 0, -3, start_hour, 5)
        self.trip(0, 1, -5, 2, 1.5)
        self.s.flush()

    def _book(self, who: str) -> Decimal:
        from models.permits.ledger import StockBalance

        return Decimal(
            self.s.scalar(select(StockBalance.quantity).where(StockBalance.enterprise_id == self.ent[who].id))
        )


def _load_catalogue(session: Session, today: date) -> int:
    if session.scalar(select(Chemical.id).limit(1)) is not None:
        return 0
    path = CATALOGUE_CSV if CATALOGUE_CSV.exists() else SHARED_CSV
    return catalogue.import_file(session, path, today)["added"]


def seed(session: Session, settings: Settings, now: datetime | None = None) -> list[str]:
    now = now or utcnow()
    added = _load_catalogue(session, local_date(now))
    if session.scalar(select(Enterprise.id).where(Enterprise.uscc == _uscc(1))) is not None:
        return [f"permits: catalogue +{added}, enterprises already seeded"]
    demo = _Demo(session, settings, now)
    demo.chem = session.scalar(select(Chemical).where(Chemical.cas == TOLUENE))
    demo.enterprises()
    demo.fleet()
    demo.flows()
    demo.anomalies()
    for ent in demo.ent.values():
        risk.evaluate_enterprise(session, ent.id, now)
    periodic.schedule(session, now)
    session.flush()
    return [
        f"permits: catalogue +{added}, 4 enterprises, {demo.keys} ledger events, "
        f"{len(PLANTED)} planted anomalies"
    ]
