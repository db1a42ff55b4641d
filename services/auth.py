"""Logins, bearer tokens, logout and one-time binding codes.

Every function takes the session and explicit inputs, flushes, never commits.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Actor, forget_token_after_commit, hash_token, new_token
from core.db import utcnow
from core.errors import DomainError, Forbidden, NotFound, RateLimited, Unauthenticated, UpstreamError
from models.identity import (
    AuthToken,
    BindingCode,
    Identity,
    IdentityKind,
    Person,
    Role,
    RoleGrant,
    StaffLogin,
)

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("zhizhi-dummy-password")

BINDING_TTL = timedelta(minutes=30)
BINDING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: read aloud and typed on phones


@dataclass
class IssuedToken:
    token: str
    expires_at: datetime
    person_id: int
    roles: list[str]
    new_account: bool = False


class WeChatLogin(Protocol):
    def code2session(self, js_code: str) -> dict[str, Any]: ...


class DingTalkLogin(Protocol):
    def userid_by_auth_code(self, code: str) -> dict[str, Any]: ...


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def issue_token(session: Session, person: Person, channel: str, ttl: int, new: bool = False) -> IssuedToken:
    token = new_token()
    expires = utcnow() + timedelta(seconds=ttl)
    session.add(
        AuthToken(token_hash=hash_token(token), person_id=person.id, channel=channel, expires_at=expires)
    )
    session.flush()
    roles = sorted(
        {str(r.role) for r in session.scalars(select(RoleGrant).where(RoleGrant.person_id == person.id))}
    )
    return IssuedToken(token, expires, person.id, roles, new)


def login_password(
    session: Session, username: str, password: str, *, ttl: int, max_failures: int, lockout_seconds: int
) -> IssuedToken:
    """Staff login. Failures count on the row; ``max_failures`` in a row lock it for
    ``lockout_seconds``. Unknown users cost the same hashing time as known ones."""
    login = session.scalar(select(StaffLogin).where(StaffLogin.username == username))
    now = utcnow()
    if login is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password + "x")
        raise Unauthenticated("用户名或密码错误", code="invalid_credentials")
    if login.locked_until and login.locked_until > now:
        minutes = max(1, int((login.locked_until - now).total_seconds() // 60))
        raise RateLimited(f"密码错误次数过多，账号已锁定，请 {minutes} 分钟后再试", code="account_locked")
    try:
        _hasher.verify(login.password_hash, password)
    except (VerificationError, InvalidHashError):
        login.failed_attempts += 1
        if login.failed_attempts >= max_failures:
            login.locked_until = now + timedelta(seconds=lockout_seconds)
            login.failed_attempts = 0
        session.flush()
        # keep_changes: the failure count must survive; the edge commits it.
        raise Unauthenticated("用户名或密码错误", code="invalid_credentials", keep_changes=True) from None
    login.failed_attempts = 0
    login.locked_until = None
    login.last_login_at = now
    if _hasher.check_needs_rehash(login.password_hash):
        login.password_hash = _hasher.hash(password)
    person = session.get(Person, login.person_id)
    if person is None or not person.active:
        raise Forbidden("账号已停用", code="account_disabled")
    return issue_token(session, person, "password", ttl)


def logout(session: Session, actor: Actor) -> None:
    """Revoke the token the actor used; it stops working at once in this process."""
    if actor.token_id is None:
        return
    row = session.get(AuthToken, actor.token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        forget_token_after_commit(session, row.token_hash)
        session.flush()


def find_identity(session: Session, kind: IdentityKind, app_id: str, external_id: str) -> Identity | None:
    return session.scalar(
        select(Identity).where(
            Identity.kind == kind, Identity.app_id == app_id, Identity.external_id == external_id
        )
    )


def attach_identity(
    session: Session, person: Person, kind: IdentityKind, app_id: str, external_id: str
) -> Identity:
    """Link a channel identity to ``person`` (idempotent; refuses one owned by someone else)."""
    existing = find_identity(session, kind, app_id, external_id)
    if existing is not None:
        if existing.person_id != person.id:
            raise DomainError("该微信/钉钉账号已绑定其他用户", code="identity_taken", status=409)
        existing.last_seen_at = utcnow()
        return existing
    ident = Identity(
        person_id=person.id, kind=kind, app_id=app_id, external_id=external_id, last_seen_at=utcnow()
    )
    session.add(ident)
    session.flush()
    return ident


def _platform_error(exc: Exception) -> DomainError:
    errcode = getattr(exc, "errcode", None)
    mapping = {
        40029: (400, "invalid_code", "登录凭证无效或已过期，请重新进入小程序"),
        40163: (400, "invalid_code", "登录凭证已被使用，请重新进入小程序"),
        45011: (429, "platform_rate_limited", "登录过于频繁，请稍后再试"),
        40226: (403, "platform_user_blocked", "该微信账号存在风险，已被平台限制登录"),
        40078: (400, "invalid_code", "登录凭证无效，请重新授权"),
    }
    if errcode in mapping:
        status, code, message = mapping[errcode]
        return DomainError(message, code=code, status=status, details={"errcode": errcode})
    return UpstreamError(details={"errcode": errcode} if errcode is not None else None)


def login_wechat_mp(
    session: Session, platform: WeChatLogin, app_id: str, js_code: str, ttl: int
) -> IssuedToken:
    """Mini-program login: code2session on the server; ``session_key`` is dropped here and
    never returned. A first-time openid becomes a new citizen account."""
    try:
        info = platform.code2session(js_code)
    except Exception as exc:
        if hasattr(exc, "errcode"):
            raise _platform_error(exc) from exc
        raise
    openid, unionid = info["openid"], info.get("unionid")
    ident = find_identity(session, IdentityKind.wechat_mp, app_id, openid)
    if ident is None and unionid:
        ident = find_identity(session, IdentityKind.wechat_unionid, "", unionid)
    new = ident is None
    if new:
        person = Person(name="微信用户")
        session.add(person)
        session.flush()
        session.add(RoleGrant(person_id=person.id, role=Role.citizen))
    else:
        person = session.get(Person, ident.person_id)
    attach_identity(session, person, IdentityKind.wechat_mp, app_id, openid)
    if unionid:
        attach_identity(session, person, IdentityKind.wechat_unionid, "", unionid)
    return issue_token(session, person, "wechat_mp", ttl, new)


def login_dingtalk(
    session: Session, platform: DingTalkLogin, app_key: str, code: str, ttl: int
) -> IssuedToken:
    """DingTalk login: auth code → userid; only staff already bound to that userid get in."""
    try:
        info = platform.userid_by_auth_code(code)
    except Exception as exc:
        if hasattr(exc, "errcode"):
            raise _platform_error(exc) from exc
        raise
    ident = find_identity(session, IdentityKind.dingtalk, app_key, info["userid"])
    if ident is None:
        raise Forbidden("该钉钉账号尚未绑定，请先使用绑定码绑定", code="identity_not_bound")
    ident.last_seen_at = utcnow()
    person = session.get(Person, ident.person_id)
    return issue_token(session, person, "dingtalk", ttl)


def new_binding_code(session: Session, person_id: int, created_by: int | None) -> tuple[str, datetime]:
    """A one-time 8-character code (valid 30 minutes) the person sends to the bot."""
    code = "".join(secrets.choice(BINDING_ALPHABET) for _ in range(8))
    expires = utcnow() + BINDING_TTL
    session.add(
        BindingCode(
            code_hash=hash_token(code), person_id=person_id, created_by_id=created_by, expires_at=expires
        )
    )
    session.flush()
    return code, expires


def binding_code_for(session: Session, actor: Actor, person_id: int | None) -> tuple[str, datetime]:
    """A binding code for the actor, or for someone the actor governs (admin; trainer or
    officer over the person's org unit)."""
    if person_id is None or person_id == actor.person_id:
        return new_binding_code(session, actor.person_id, actor.person_id)
    target = session.get(Person, person_id)
    if target is None:
        raise NotFound("人员不存在", code="person_not_found")
    path = target.org_unit.path if target.org_unit else None
    if not actor.covers(path, "trainer", "officer"):
        raise Forbidden("只能为本辖区人员生成绑定码", code="out_of_jurisdiction")
    return new_binding_code(session, target.id, actor.person_id)


def redeem_binding_code(
    session: Session, code: str, kind: IdentityKind, app_id: str, external_id: str
) -> Person:
    """Link the chat identity to the code's account; the code works once."""
    row = session.scalar(select(BindingCode).where(BindingCode.code_hash == hash_token(code.strip().upper())))
    if row is None:
        raise NotFound("绑定码不存在，请核对后重新输入", code="binding_code_invalid")
    if row.used_at is not None:
        raise DomainError("绑定码已使用", code="binding_code_used", status=409)
    if row.expires_at <= utcnow():
        raise DomainError("绑定码已过期，请重新获取", code="binding_code_expired", status=410)
    person = session.get(Person, row.person_id)
    ident = attach_identity(session, person, kind, app_id, external_id)
    row.used_at = utcnow()
    row.used_identity_id = ident.id
    session.flush()
    return person
