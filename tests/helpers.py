"""Small builders and an API client wrapper for tests."""

from __future__ import annotations

import itertools
import random
from typing import Any

from sqlalchemy.orm import Session

from core import pii
from core.validators import resident_id_check_digit as check_digit
from models.identity import OrgLevel, OrgUnit, Person, Role, RoleGrant
from services.auth import issue_token

_seq = itertools.count(1)


def valid_id_number(seed: int | None = None, region: str = "330106") -> str:
    rng = random.Random(seed)
    birth = f"{rng.randint(1960, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first = f"{region}{birth}{rng.randint(0, 999):03d}"
    return first + check_digit(first)


def make_org(
    session: Session, name: str, level: OrgLevel = OrgLevel.district, parent: OrgUnit | None = None
) -> OrgUnit:
    unit = OrgUnit(
        code=f"T{next(_seq):06d}", name=name, level=level, parent_id=parent.id if parent else None, path=""
    )
    session.add(unit)
    session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    session.flush()
    return unit


def make_person(
    session: Session,
    *roles: str,
    org: OrgUnit | None = None,
    name: str = "测试用户",
    id_number: str | None = None,
    mobile: str | None = None,
    department: str | None = None,
) -> Person:
    person = Person(name=name, org_unit_id=org.id if org else None)
    if id_number:
        person.id_number, person.id_number_index = id_number, pii.index("resident_id", id_number)
    if mobile:
        person.mobile, person.mobile_index = mobile, pii.index("mobile", mobile)
    session.add(person)
    session.flush()
    for role in roles:
        session.add(
            RoleGrant(
                person_id=person.id,
                role=Role(role),
                org_unit_id=org.id if org else None,
                department=department,
            )
        )
    session.flush()
    return person


def token_for(session: Session, person: Person, ttl: int = 3600) -> str:
    return issue_token(session, person, "test", ttl).token


class Api:
    """``client`` with the envelope unpacked: ``api.post(path, json, token=...)``."""

    def __init__(self, client: Any, token: str | None = None) -> None:
        self.client = client
        self.token = token

    def _headers(self, token: str | None, headers: dict[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        tok = token or self.token
        if tok:
            out["Authorization"] = f"Bearer {tok}"
        return out

    def get(self, path: str, token: str | None = None, **kw: Any) -> Any:
        return self.client.get("/api/v1" + path, headers=self._headers(token, kw.pop("headers", None)), **kw)

    def post(self, path: str, json: Any = None, token: str | None = None, **kw: Any) -> Any:
        return self.client.post(
            "/api/v1" + path, json=json, headers=self._headers(token, kw.pop("headers", None)), **kw
        )

    def as_(self, token: str) -> Api:
        return Api(self.client, token)
