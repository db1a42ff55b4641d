"""Demo: a summit in Wuzhen with 外围区 ⊃ 管控区 ⊃ 核心区, gates on each boundary,
capacities, watch-list entries and a handful of applications in every state."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import load_actor
from core.config import Settings
from models.identity import Person, Role, RoleGrant, StaffLogin
from models.passes import Event
from services.auth import hash_password
from services.demo.foundation import add_person, demo_id_number, demo_mobile, org_by_code
from services.passes import applications, events, lists

EVENT_NAME = "2026年世界互联网大会乌镇峰会"
ZONES = [
    events.ZoneSpec(1, "外围区", daily_capacity_visitor=5000, daily_capacity_vehicle=800),
    events.ZoneSpec(2, "管控区", daily_capacity_visitor=2000, daily_capacity_vehicle=300),
    events.ZoneSpec(3, "核心区", daily_capacity_visitor=500, daily_capacity_vehicle=50, max_inside=400),
]
# name, ring, direction, vehicle, device username ("gate01" comes from the foundation seed)
GATES = [
    ("外围区东栅入口", 1, "in", False, "gate01"),
    ("外围区东栅出口", 1, "out", False, "gate02"),
    ("外围区西栅车辆通道", 1, "both", True, "gate03"),
    ("管控区北门", 2, "both", False, "gate04"),
    ("管控区北门车辆通道", 2, "both", True, "gate06"),  # the demo car's pass is for ring 2
    ("核心区互联网之光博览中心南门", 3, "in", False, "gate05"),
]
VISITORS = [
    ("沈嘉怡", 1, "参观博览会"),
    ("陆志强", 2, "论坛嘉宾随行"),
    ("朱晓燕", 3, "大会工作人员"),
    ("顾明", 1, "媒体采访"),
]


def _device(session: Session, username: str, name: str, rng: random.Random) -> Person:
    login = session.scalar(select(StaffLogin).where(StaffLogin.username == username))
    if login is not None:
        return session.get(Person, login.person_id)
    person = add_person(session, name, "330483101", rng)
    unit = org_by_code(session, "330483101")
    session.add(RoleGrant(person_id=person.id, role=Role.gate, org_unit_id=unit.id if unit else None))
    session.add(StaffLogin(person_id=person.id, username=username, password_hash=hash_password("Gate@2026")))
    session.flush()
    return person


def _event(session: Session, officer, settings: Settings, first_day: date, rng: random.Random) -> Event:
    tz = ZoneInfo("Asia/Shanghai")
    wuzhen = org_by_code(session, "330483101")  # 乌镇镇: the officer of 桐乡市 covers it
    event = events.create_event(
        session,
        officer,
        name=EVENT_NAME,
        starts_at=datetime.combine(first_day, time(7, 0), tz),
        ends_at=datetime.combine(first_day + timedelta(days=2), time(22, 0), tz),
        zones=ZONES,
        kek=settings.signing_kek,
        org_unit_id=wuzhen.id if wuzhen else None,
        timezone="Asia/Shanghai",
    )
    for name, ring, direction, vehicle, username in GATES:
        device = _device(session, username, name + "闸机", rng)
        events.add_gate(
            session, officer, event.id, name=name, ring=ring, direction=direction, vehicle=vehicle,
            device_person_id=device.id,
        )  # fmt: skip
    return event


def _watch_list(session: Session, officer, event: Event, watched: str, namesake: str) -> None:
    add = lists.add_watch_entry
    add(session, officer, event_id=event.id, reason="演示：在逃人员", severity="reject", id_number=watched)
    add(session, officer, event_id=event.id, reason="演示：重点关注车辆", severity="alert", plate="浙F12345")
    born = date(int(namesake[6:10]), int(namesake[10:12]), int(namesake[12:14]))
    add(
        session,
        officer,
        event_id=event.id,
        reason="演示：同名关注",
        severity="alert",
        name="顾明",
        birth_date=born,
    )


def seed(session: Session, settings: Settings) -> list[str]:
    """The summit, its gates (device accounts gate01…gate06), watch entries and six
    applications (approved, manual review, rejected). Idempotent by event name."""
    if session.scalar(select(Event.id).where(Event.name == EVENT_NAME)) is not None:
        return ["passes: demo event exists"]
    rng = random.Random(20261129)
    officer_login = session.scalar(select(StaffLogin).where(StaffLogin.username == "officer"))
    officer = load_actor(session, officer_login.person_id)
    first_day = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=7)
    event = _event(session, officer, settings, first_day, rng)
    citizen = add_person(session, "王建国", "330483101001", rng)
    session.add(RoleGrant(person_id=citizen.id, role=Role.citizen))
    session.flush()
    applicant = load_actor(session, citizen.id)
    ids = [demo_id_number(rng) for _ in range(len(VISITORS) + 1)]
    _watch_list(session, officer, event, watched=ids[-1], namesake=ids[3])  # 顾明 -> manual review
    kek = settings.signing_kek
    statuses = []
    for (name, ring, purpose), id_number in zip([*VISITORS, ("赵在逃", 1, "参观")], ids, strict=True):
        data = applications.ApplicationInput(
            person=applications.PersonInput(name, id_number, demo_mobile(rng)),
            purpose=purpose, host_unit="大会组委会", ring=ring,
            visit_from=first_day, visit_to=first_day + timedelta(days=1),
        )  # fmt: skip
        statuses.append(applications.create(session, applicant, event.id, data, kek=kek).status.value)
    car = applications.ApplicationInput(
        person=applications.PersonInput("钱师傅", demo_id_number(rng), demo_mobile(rng)),
        purpose="嘉宾接送", host_unit="大会组委会", visit_from=first_day, visit_to=first_day, ring=2,
        plate="浙F12345", plate_colour="blue", vehicle_type="小型轿车", driving_licence="330483198805050011",
    )  # fmt: skip
    statuses.append(applications.create(session, applicant, event.id, car, kek=kek).status.value)
    return [f"passes: event {event.id} with {len(GATES)} gates, applications {statuses}"]
