"""Builders for permits tests: a seller, a buyer, a carrier with a vehicle and a driver."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from core.auth import load_actor
from core.validators import uscc_check_char
from models.identity import OrgUnit
from models.permits.catalogue import Chemical
from services.permits import applications, catalogue, credentials, enterprises
from tests.helpers import make_org, make_person

CATALOGUE = Path("/work/shared/data/precursor_chemicals.csv")
if not CATALOGUE.exists():  # pragma: no cover - the data is vendored next to the tests as well
    CATALOGUE = Path(__file__).parent / "precursor_chemicals.csv"
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # 10:00 Asia/Shanghai, a Monday
TODAY = date(2026, 11, 2)
_seq = itertools.count(1)


def make_uscc(n: int | None = None) -> str:
    n = next(_seq) if n is None else n
    first17 = f"91330483MA{n:07d}"[:17]
    return first17 + uscc_check_char(first17)


def actor(session, person):
    return load_actor(session, person.id)


def load_catalogue(session) -> None:
    if session.scalar(select(Chemical.id).limit(1)) is None:
        catalogue.import_file(session, CATALOGUE, date(2026, 11, 1))


def chem(session, cas: str) -> Chemical:
    return session.scalar(select(Chemical).where(Chemical.cas == cas))


@dataclass
class World:
    org: OrgUnit
    seller: object
    buyer: object
    carrier: object
    seller_mgr: object
    buyer_mgr: object
    carrier_mgr: object
    driver: object
    vehicle: object
    creds: dict
    toluene: Chemical
    ephedrine: Chemical
    kek: bytes
    regulator: object


def make_enterprise(session, org, kind: str, name: str, categories=(1, 2, 3), manager=None):
    mgr = manager or make_person(session, org=org, name=f"{name}专管员")
    ent = enterprises.register(
        session,
        actor(session, mgr),
        name=name,
        uscc=make_uscc(),
        kind=kind,
        org_unit_id=org.id,
        sites=["一号库"],
    )
    for cat in categories:
        credentials.add_credential(
            session,
            actor(session, mgr),
            ent.id,
            kind="enterprise_licence",
            number=f"LIC-{ent.id}-{cat}",
            valid_until=TODAY + timedelta(days=365),
            category=cat,
        )
    return ent, mgr


def build_world(session, kek: bytes, *, qualification_until: date | None = None) -> World:
    load_catalogue(session)
    org = make_org(session, "测试区")
    regulator = make_person(session, "regulator", org=org, name="孙监管", department="police")
    seller, seller_mgr = make_enterprise(session, org, "producer", "甲化工")
    buyer, buyer_mgr = make_enterprise(session, org, "user", "乙制药")
    carrier, carrier_mgr = make_enterprise(session, org, "carrier", "丙物流")
    cm = actor(session, carrier_mgr)
    driver = make_person(session, org=org, name="赵师傅")
    enterprises.add_member(session, cm, carrier.id, driver.id, "driver")
    vehicle = credentials.add_vehicle(session, cm, carrier.id, "浙F12345", "yellow")
    far = TODAY + timedelta(days=200)
    creds = {
        "reg": credentials.add_credential(
            session,
            cm,
            carrier.id,
            kind="vehicle_registration",
            number="XSZ-1",
            valid_until=far,
            vehicle_id=vehicle.id,
        ),
        "rtc": credentials.add_credential(
            session,
            cm,
            carrier.id,
            kind="road_transport",
            number="YSZ-1",
            valid_until=far,
            vehicle_id=vehicle.id,
        ),
        "dl": credentials.add_credential(
            session,
            cm,
            carrier.id,
            kind="driving_licence",
            number="JSZ-1",
            valid_until=far,
            person_id=driver.id,
        ),
        "dq": credentials.add_credential(
            session,
            cm,
            carrier.id,
            kind="driver_qualification",
            number="CYZG-1",
            valid_until=qualification_until or far,
            person_id=driver.id,
        ),
    }
    return World(
        org,
        seller,
        buyer,
        carrier,
        seller_mgr,
        buyer_mgr,
        carrier_mgr,
        driver,
        vehicle,
        creds,
        chem(session, "108-88-3"),
        chem(session, "299-42-3"),
        kek,
        regulator,
    )


def purchase(session, w: World, quantity=Decimal("1000"), chemical=None):
    _app, permit = applications.apply_purchase(
        session,
        actor(session, w.buyer_mgr),
        enterprise_id=w.buyer.id,
        seller_enterprise_id=w.seller.id,
        chemical_id=(chemical or w.toluene).id,
        quantity=quantity,
        unit="kg",
        kek=w.kek,
        now=NOW,
    )
    return permit


def transport(session, w: World, purchase_permit, quantity=Decimal("1000"), **over):
    args = dict(
        enterprise_id=w.buyer.id,
        purchase_permit_id=purchase_permit.id,
        carrier_enterprise_id=w.carrier.id,
        vehicle_id=w.vehicle.id,
        plate="浙F12345",
        driver_id=w.driver.id,
        escort_id=None,
        quantity=quantity,
        unit="kg",
        window_start=TODAY,
        window_end=TODAY + timedelta(days=2),
        kek=w.kek,
        now=NOW,
    )
    args.update(over)
    return applications.apply_transport(session, actor(session, w.buyer_mgr), **args)
