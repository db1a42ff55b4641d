"""Demo org tree and one staff account per role (passwords are listed in README.md)."""

from __future__ import annotations

import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import pii
from core.config import Settings
from core.validators import resident_id_check_digit as check_digit
from models.identity import Department, OrgLevel, OrgUnit, Person, Role, RoleGrant, StaffLogin
from services.auth import hash_password

# code, name, level, parent code
ORG_TREE = [
    ("330483", "桐乡市", OrgLevel.district, None),
    ("330483101", "乌镇镇", OrgLevel.street, "330483"),
    ("330483101001", "乌镇社区", OrgLevel.community, "330483101"),
    ("330483101001-01", "乌镇社区第一网格", OrgLevel.grid, "330483101001"),
    ("330483101001-02", "乌镇社区第二网格", OrgLevel.grid, "330483101001"),
    ("330483101002", "虹桥村", OrgLevel.community, "330483101"),
    ("330483101002-01", "虹桥村第一网格", OrgLevel.grid, "330483101002"),
    ("330483001", "梧桐街道", OrgLevel.street, "330483"),
    ("330483001001", "庆丰社区", OrgLevel.community, "330483001"),
    ("330483001001-01", "庆丰社区第一网格", OrgLevel.grid, "330483001001"),
    ("330483001002", "复兴社区", OrgLevel.community, "330483001"),
    ("330483001002-01", "复兴社区第一网格", OrgLevel.grid, "330483001002"),
    ("330402", "南湖区", OrgLevel.district, None),
    ("330402001", "建设街道", OrgLevel.street, "330402"),
    ("330402001001", "紫阳社区", OrgLevel.community, "330402001"),
    ("330402001001-01", "紫阳社区第一网格", OrgLevel.grid, "330402001001"),
]

# username, name, role, org code, department, password
STAFF = [
    ("admin", "系统管理员", Role.admin, None, None, "Admin@2026"),
    ("trainer", "沈培训", Role.trainer, "330483", None, "Trainer@2026"),
    ("trainer_nanhu", "陆培训", Role.trainer, "330402", None, "Trainer@2026"),
    ("officer", "钱警官", Role.officer, "330483", None, "Officer@2026"),
    ("regulator", "孙监管", Role.regulator, "330483", Department.police, "Regulator@2026"),
    ("regulator_em", "李应急", Role.regulator, "330483", Department.emergency, "Regulator@2026"),
    ("gate01", "乌镇东栅闸机", Role.gate, "330483101", None, "Gate@2026"),
    ("worker", "周网格", Role.grid_worker, "330483101001-01", None, "Worker@2026"),
]

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余"
    "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙"
    "史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国红梅志鹏飞燕辉鑫宇浩然晨阳婷雪琳"


def demo_id_number(rng: random.Random, region: str = "330483") -> str:
    birth = f"{rng.randint(1965, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first = f"{region}{birth}{rng.randint(0, 999):03d}"
    return first + check_digit(first)


def demo_mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randint(0, 9)}{rng.randint(0, 99999999):08d}"


def org_by_code(session: Session, code: str) -> OrgUnit | None:
    return session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def _org_tree(session: Session) -> int:
    added = 0
    for code, name, level, parent_code in ORG_TREE:
        if org_by_code(session, code) is not None:
            continue
        parent = org_by_code(session, parent_code) if parent_code else None
        unit = OrgUnit(code=code, name=name, level=level, parent_id=parent.id if parent else None, path="")
        session.add(unit)
        session.flush()
        unit.path = f"{parent.path if parent else '/'}{unit.id}/"
        added += 1
    return added


def add_person(
    session: Session,
    name: str,
    org_code: str | None,
    rng: random.Random,
    id_number: str | None = None,
    mobile: str | None = None,
) -> Person:
    id_number = id_number or demo_id_number(rng)
    mobile = mobile or demo_mobile(rng)
    unit = org_by_code(session, org_code) if org_code else None
    person = Person(
        name=name,
        id_number=id_number,
        id_number_index=pii.index("resident_id", id_number),
        mobile=mobile,
        mobile_index=pii.index("mobile", mobile),
        org_unit_id=unit.id if unit else None,
    )
    session.add(person)
    session.flush()
    return person


def _staff(session: Session, rng: random.Random) -> int:
    added = 0
    for username, name, role, org_code, dept, password in STAFF:
        if session.scalar(select(StaffLogin).where(StaffLogin.username == username)):
            continue
        person = add_person(session, name, org_code, rng)
        unit = org_by_code(session, org_code) if org_code else None
        session.add(
            RoleGrant(person_id=person.id, role=role, org_unit_id=unit.id if unit else None, department=dept)
        )
        session.add(StaffLogin(person_id=person.id, username=username, password_hash=hash_password(password)))
        added += 1
    return added


def _grid_workers(session: Session, rng: random.Random) -> int:
    grids = [code for code, _n, level, _p in ORG_TREE if level == OrgLevel.grid]
    existing = session.scalar(
        select(RoleGrant.id).where(RoleGrant.role == Role.grid_worker).offset(1).limit(1)
    )
    if existing is not None:
        return 0
    added = 0
    for i in range(40):
        code = grids[i % len(grids)]
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        person = add_person(session, name, code, rng)
        session.add(RoleGrant(person_id=person.id, role=Role.grid_worker, org_unit_id=person.org_unit_id))
        added += 1
    return added


def seed(session: Session, settings: Settings) -> list[str]:
    rng = random.Random(20261128)
    orgs = _org_tree(session)
    staff = _staff(session, rng)
    workers = _grid_workers(session, rng)
    return [f"org units +{orgs}", f"staff accounts +{staff}", f"grid workers +{workers}"]
