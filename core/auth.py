"""Bearer-token authentication and the authorization helpers services call.

Tokens are random strings; only their SHA-256 is stored. A validated token is cached in
the process for ``AUTH_CACHE_SECONDS`` (default 5 s) so hot paths such as gate scans do
not pay a database round trip per request; logout clears the local entry at once and
other processes within that bound.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import Forbidden, Unauthenticated


@dataclass(frozen=True)
class Grant:
    role: str
    org_unit_id: int | None = None
    org_path: str | None = None
    department: str | None = None


@dataclass(frozen=True)
class Actor:
    person_id: int
    name: str
    grants: tuple[Grant, ...]
    org_unit_id: int | None = None
    token_id: int | None = None

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants)

    def has_role(self, role: str) -> bool:
        return any(g.role == role for g in self.grants)

    def has_any_role(self, roles: Iterable[str]) -> bool:
        wanted = set(roles)
        return any(g.role in wanted for g in self.grants)

    def jurisdictions(self, *roles: str) -> list[str]:
        """Org paths this actor governs in any of ``roles`` (admin: everything)."""
        return [g.org_path or "/" for g in self.grants if g.role in roles or g.role == "admin"]

    def covers(self, org_path: str | None, *roles: str) -> bool:
        if self.has_role("admin"):
            return True
        if org_path is None:
            return False
        return any(org_path.startswith(p) for p in self.jurisdictions(*roles))


def require_role(actor: Actor | None, *roles: str) -> Actor:
    if actor is None:
        raise Unauthenticated()
    if not (actor.has_any_role(roles) or actor.has_role("admin")):
        raise Forbidden()
    return actor


def require_jurisdiction(actor: Actor | None, org_path: str | None, *roles: str) -> Actor:
    """The actor holds one of ``roles`` over a subtree containing ``org_path``."""
    actor = require_role(actor, *roles)
    if not actor.covers(org_path, *roles):
        raise Forbidden("不在您的管辖范围内", code="out_of_jurisdiction")
    return actor


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "zz_" + secrets.token_urlsafe(32)


class _TokenCache:
    def __init__(self, size: int = 20000) -> None:
        self._data: OrderedDict[str, tuple[Actor, float, datetime]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> Actor | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            actor, until, expires_at = hit
            if time.monotonic() > until or utcnow() >= expires_at:
                self._data.pop(key, None)
                return None
            self._data.move_to_end(key)
            return actor

    def put(self, key: str, actor: Actor, ttl: float, expires_at: datetime) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._data[key] = (actor, time.monotonic() + ttl, expires_at)
            if len(self._data) > self._size:
                self._data.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


token_cache = _TokenCache()


def load_actor(session: Session, person_id: int, token_id: int | None = None) -> Actor:
    from models.identity import OrgUnit, Person, RoleGrant

    person = session.get(Person, person_id)
    if person is None or not person.active:
        raise Unauthenticated("账号不存在或已停用", code="account_disabled")
    rows = session.execute(
        select(RoleGrant, OrgUnit.path)
        .outerjoin(OrgUnit, OrgUnit.id == RoleGrant.org_unit_id)
        .where(RoleGrant.person_id == person_id)
    ).all()
    grants = tuple(
        Grant(
            role=str(rg.role),
            org_unit_id=rg.org_unit_id,
            org_path=path,
            department=str(rg.department) if rg.department else None,
        )
        for rg, path in rows
    )
    return Actor(person_id, person.name, grants, person.org_unit_id, token_id)


def authenticate_token(
    session: Session | Callable[[], Session], token: str, cache_seconds: float = 0
) -> Actor:
    """``session`` may be a factory, called only on a cache miss."""
    from models.identity import AuthToken

    key = hash_token(token)
    cached = token_cache.get(key)
    if cached is not None:
        return cached
    if callable(session):
        session = session()
    row = session.scalar(select(AuthToken).where(AuthToken.token_hash == key))
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("登录已失效，请重新登录", code="invalid_token")
    if row.expires_at <= now:
        raise Unauthenticated("登录已过期，请重新登录", code="token_expired")
    actor = load_actor(session, row.person_id, row.id)
    token_cache.put(key, actor, cache_seconds, row.expires_at)
    return actor


def authenticate_request(
    session: Session | Callable[[], Session], header: str | None, optional: bool
) -> Actor | None:
    """Resolve ``Authorization: Bearer ...``; public routes ignore a missing header."""
    if not header:
        if optional:
            return None
        raise Unauthenticated()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("认证头格式应为 Bearer <token>", code="invalid_token")
    settings = current_app.extensions["zhizhi"].settings
    return authenticate_token(session, token.strip(), settings.auth_cache_seconds)
