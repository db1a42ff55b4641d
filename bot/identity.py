"""Keeps the bot's cached chat identities true to the database.

The engine caches who a chat user is (person id and roles; ``bot.store.who_key``) so a
message needs no database query. Whatever changes that answer drops the cached entry
when its transaction commits, whichever code path made the change:
- an ``Identity`` row of a chat channel inserted, changed or deleted (bind, unbind,
  re-bind to another person);
- a ``RoleGrant`` inserted, changed or deleted, or a ``Person`` (de)activated: the
  entries of every chat identity of that person.
Changes that bypass the ORM (bulk SQL) are not seen; ``bot.store.WHO_TTL`` bounds them.
``install(app)`` is called by ``bot.register``.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, object_session

from bot.store import who_key

log = logging.getLogger("zhizhi.bot")

_KEYS = "bot_who_forget"  # Session.info: chat user keys to forget after the commit
_PEOPLE = "bot_who_people"  # Session.info: persons whose chat identities to look up
_apps: list[weakref.ref[Any]] = []


def user_key(kind: Any, app_id: str, external_id: str) -> str | None:
    """The engine's ``Message.user_key`` of an identity row (None: not a chat channel)."""
    from models.identity import IdentityKind

    channel = {IdentityKind.wechat_oa: "wechat", IdentityKind.dingtalk: "dingtalk"}.get(kind)
    return f"{channel}:{app_id}:{external_id}" if channel else None


_BINDING = ("person_id", "kind", "app_id", "external_id")


def _values(target: Any, name: str) -> list[Any]:
    """The attribute's current value and, for an update, the value it replaced (read
    without loading anything: this runs inside a flush)."""
    state = inspect(target)
    hist = state.attrs[name].history
    return [*hist.added, *hist.unchanged, *hist.deleted] or [state.dict.get(name)]


def _changed(target: Any, names: tuple[str, ...]) -> bool:
    attrs = inspect(target).attrs
    return any(attrs[n].history.has_changes() for n in names)


def _info(target: Any, name: str) -> set[Any] | None:
    session = object_session(target)
    return None if session is None else session.info.setdefault(name, set())


def _identity_changed(_mapper: Any, _conn: Any, target: Any) -> None:
    _identity_touched(target)


def _identity_updated(_mapper: Any, _conn: Any, target: Any) -> None:
    if _changed(target, _BINDING):  # not for last_seen_at
        _identity_touched(target)


def _identity_touched(target: Any) -> None:
    keys = _info(target, _KEYS)
    if keys is None:
        return
    for kind in _values(target, "kind"):
        for app_id in _values(target, "app_id"):
            for external_id in _values(target, "external_id"):
                key = user_key(kind, app_id, external_id)
                if key:
                    keys.add(key)


def _grant_changed(_mapper: Any, _conn: Any, target: Any) -> None:
    people = _info(target, _PEOPLE)
    if people is not None:
        people.update(p for p in _values(target, "person_id") if p is not None)


def _person_changed(_mapper: Any, _conn: Any, target: Any) -> None:
    if _changed(target, ("active",)):
        people = _info(target, _PEOPLE)
        if people is not None:
            people.add(target.id)


def _after_flush(session: Session, _ctx: Any) -> None:
    people = session.info.pop(_PEOPLE, None)
    if not people:
        return
    from models.identity import Identity, IdentityKind

    rows = session.connection().execute(
        select(Identity.kind, Identity.app_id, Identity.external_id).where(
            Identity.person_id.in_(sorted(people)),
            Identity.kind.in_([IdentityKind.wechat_oa, IdentityKind.dingtalk]),
        )
    )
    keys = session.info.setdefault(_KEYS, set())
    keys.update(k for k in (user_key(*row) for row in rows) if k)


def _after_commit(session: Session) -> None:
    keys = session.info.pop(_KEYS, None)
    if keys:
        forget(keys)


def _after_soft_rollback(session: Session, previous: Any) -> None:
    if previous.parent is None and not previous.nested:  # the whole unit of work is undone
        session.info.pop(_KEYS, None)
        session.info.pop(_PEOPLE, None)


def _clients() -> list[Any]:
    from flask import current_app, has_app_context

    if has_app_context() and "zhizhi" in current_app.extensions:
        return [current_app.extensions["zhizhi"].redis]
    exts = [ref() for ref in _apps]
    return [ext.redis for ext in exts if ext is not None]


def forget(user_keys: set[str] | list[str]) -> None:
    """Drop the cached identities of these chat users (``channel:app:sender``)."""
    names = [who_key(k) for k in sorted(user_keys)]
    for client in _clients():
        try:
            client.delete(*names)
        except Exception:  # the entries expire by themselves (WHO_TTL)
            log.exception("bot: could not drop %d cached chat identities", len(names))


def install(app: Any) -> None:
    """Register the ORM listeners once per process and remember the app's Redis."""
    from models.identity import Identity, Person, RoleGrant

    ext = app.extensions.get("zhizhi")
    if ext is not None:
        _apps[:] = [ref for ref in _apps if ref() is not None]
        _apps.append(weakref.ref(ext))
    if event.contains(Session, "after_commit", _after_commit):
        return
    event.listen(Identity, "after_insert", _identity_changed)
    event.listen(Identity, "after_update", _identity_updated)
    event.listen(Identity, "after_delete", _identity_changed)
    for name in ("after_insert", "after_update", "after_delete"):
        event.listen(RoleGrant, name, _grant_changed)
    event.listen(Person, "after_update", _person_changed)
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_soft_rollback", _after_soft_rollback)
