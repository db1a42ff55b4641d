"""Bearer-token authentication and the authorization helpers services call.

Tokens are random strings; only their SHA-256 is stored. A validated token is cached in
the process for ``AUTH_CACHE_SECONDS`` (default 5 s) so hot paths such as gate scans do
not pay a round trip per request, and in Redis for up to ``SHARED_TTL`` seconds so that a
process that has not seen the token pays one GET instead of three SQL queries. Logout and
any change to a person's role grants delete the Redis entries at once (after commit) and
the local entry in this process; other processes follow within ``AUTH_CACHE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import Any

import redis as redis_lib
from flask import current_app, has_app_context
from sqlalchemy import event, select
from sqlalchemy.orm import Session, object_session

from core import redislink
from core.db import after_commit, utcnow
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

    @cached_property
    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_any_role(self, roles: Iterable[str]) -> bool:
        return not self.roles.isdisjoint(roles)

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


SHARED_TTL = 300
log = logging.getLogger(__name__)


def _shared() -> Any:
    return current_app.extensions["zhizhi"].redis if has_app_context() else None


def _encode(actor: Actor, expires_at: datetime) -> str:
    grants = [[g.role, g.org_unit_id, g.org_path, g.department] for g in actor.grants]
    return json.dumps(
        {"p": actor.person_id, "n": actor.name, "o": actor.org_unit_id, "t": actor.token_id, "g": grants,
         "e": expires_at.timestamp()},
        ensure_ascii=False, separators=(",", ":"),
    )  # fmt: skip


def _decode(raw: bytes | str) -> tuple[Actor, datetime]:
    d = json.loads(raw)
    grants = tuple(Grant(role, unit, path, dept) for role, unit, path, dept in d["g"])
    return Actor(d["p"], d["n"], grants, d["o"], d["t"]), datetime.fromtimestamp(d["e"], UTC)


def _shared_get(key: str) -> tuple[Actor, datetime] | None:
    r = _shared()
    if r is None:
        return None
    try:
        raw = redislink.call(r, ("GET", "auth:t:" + key))  # the hot link: no pool checkout
    except redis_lib.RedisError:
        return None
    return _decode(raw) if raw else None


def _shared_put(key: str, actor: Actor, expires_at: datetime) -> None:
    r = _shared()
    ttl = min(SHARED_TTL, int((expires_at - utcnow()).total_seconds()))
    if r is None or ttl <= 0:
        return
    try:
        pipe = r.pipeline(transaction=False)
        pipe.set(f"auth:t:{key}", _encode(actor, expires_at), ex=ttl)
        pipe.sadd(f"auth:p:{actor.person_id}", key)
        pipe.expire(f"auth:p:{actor.person_id}", SHARED_TTL)
        pipe.execute()
    except redis_lib.RedisError as exc:
        log.warning("shared token cache not filled: %s", type(exc).__name__)


def forget_person(person_id: int) -> None:
    """Drop every cached token of ``person_id`` (roles or status changed)."""
    r = _shared()
    if r is None:
        return
    try:
        keys = [k.decode() if isinstance(k, bytes) else k for k in r.smembers(f"auth:p:{person_id}")]
        for k in keys:
            token_cache.drop(k)
        r.delete(f"auth:p:{person_id}", *[f"auth:t:{k}" for k in keys])
    except redis_lib.RedisError as exc:
        log.warning("shared token cache not cleared: %s", type(exc).__name__)


def forget_token(token_hash: str) -> None:
    token_cache.drop(token_hash)
    r = _shared()
    if r is None:
        return
    try:
        r.delete(f"auth:t:{token_hash}")
    except redis_lib.RedisError as exc:
        log.warning("shared token cache not cleared: %s", type(exc).__name__)


def install_invalidation() -> None:
    """Forget a person's cached tokens after a commit that changed their grants or their
    account (idempotent; called by create_app)."""
    from models.identity import Person, RoleGrant

    if getattr(install_invalidation, "done", False):
        return
    install_invalidation.done = True  # type: ignore[attr-defined]

    def touched(_mapper: Any, _connection: Any, target: Any) -> None:
        session = object_session(target)
        if session is not None:
            pid = target.person_id if isinstance(target, RoleGrant) else target.id
            after_commit(session, partial(forget_person, pid), key=("auth_person", pid))

    for model in (RoleGrant, Person):
        for kind in ("after_update", "after_delete"):
            event.listen(model, kind, touched)
    event.listen(RoleGrant, "after_insert", touched)


def forget_token_after_commit(session: Session, token_hash: str) -> None:
    """Logout: the token leaves this process's cache now and the shared cache once the
    revocation is committed (so no other request can put it back in between)."""
    token_cache.drop(token_hash)
    after_commit(session, partial(forget_token, token_hash), key=("auth_token", token_hash))


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
    shared = _shared_get(key)
    if shared is not None and shared[1] > utcnow():
        token_cache.put(key, shared[0], cache_seconds, shared[1])
        return shared[0]
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
    _shared_put(key, actor, row.expires_at)
    return actor


def authenticate_request(
    session: Session | Callable[[], Session],
    header: str | None,
    optional: bool,
    *,
    cache_seconds: float | None = None,
) -> Actor | None:
    """Resolve ``Authorization: Bearer ...``; public routes ignore a missing header."""
    if not header:
        if optional:
            return None
        raise Unauthenticated()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("认证头格式应为 Bearer <token>", code="invalid_token")
    if cache_seconds is None:
        cache_seconds = current_app.extensions["zhizhi"].settings.auth_cache_seconds
    return authenticate_token(session, token.strip(), cache_seconds)
