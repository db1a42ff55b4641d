"""Channel-neutral conversation engine.

Adapters (bot.wechat, bot.dingtalk) turn a verified platform payload into a ``Message``
and render the ``Reply`` back. ``handle`` runs one message: claim the dedup key and the
user's lock and load the state and the cached identity (one Redis round trip), route
the text/event to a command or to the user's current flow, commit the unit of work
(outbox rows are dispatched after the commit), then cache the reply, store the state
and release the lock (one script sent without waiting for its reply, see bot.store).
A message answered from the state and the cached identity (help, a menu, a step of a
flow kept in Redis) touches no database.

A duplicate delivery gets the cached reply (or ``success`` while the first delivery is
still running) and changes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import redis
from sqlalchemy.orm import Session

from bot.store import SILENT, UNCHANGED, Conversation, dump_state
from core.db import utcnow
from core.errors import DomainError

log = logging.getLogger("zhizhi.bot")


def _encode(data: dict[str, Any]) -> str:
    return orjson.dumps(data).decode()  # compact UTF-8 JSON


#: the passive answer is due within this many seconds (WeChat itself waits 5 s): a reply
#: that took longer goes out as a customer-service message and the answer is ``success``.
#: Commands known to be slow do not wait for it (``router.command(slow=True)``).
PASSIVE_BUDGET = 1.0


@dataclass
class Message:
    channel: str  # "wechat" | "dingtalk"
    app: str  # official-account AppID / DingTalk AppKey
    sender: str  # openid / DingTalk userid
    kind: str  # text | event | image | voice | ... (platform type, lower case)
    dedup: str  # message id or, for events, CreateTime+Event+EventKey
    text: str = ""
    event: str = ""  # subscribe | click | scan | ... (lower case)
    event_key: str = ""
    group: bool = False
    created_at: int = 0
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def user_key(self) -> str:
        return f"{self.channel}:{self.app}:{self.sender}"


@dataclass
class Reply:
    """One answer. ``silent``: nothing to say (WeChat ``success``, DingTalk ``{}``)."""

    text: str = ""
    title: str = ""
    url: str = ""
    buttons: list[tuple[str, str]] = field(default_factory=list)
    markdown: bool = False
    silent: bool = False
    replayed: bool = field(default=False, compare=False)  # the cached answer to a duplicate

    def to_json(self) -> str:
        if self.silent:
            return SILENT
        data: dict[str, Any] = {"text": self.text}
        for name in ("title", "url", "markdown"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        if self.buttons:
            data["buttons"] = [list(b) for b in self.buttons]
        return _encode(data)

    @classmethod
    def from_json(cls, raw: str | None) -> Reply:
        if not raw or raw == SILENT:
            return cls(silent=True)
        data = orjson.loads(raw)
        data["buttons"] = [tuple(b) for b in data.get("buttons", [])]
        return cls(**data)


class Turn:
    """What a dialog sees: the message, the user's state, a lazy DB session, the clock."""

    def __init__(
        self, ext: Any, msg: Message, state: dict[str, Any], now: datetime, who: dict[str, Any] | None = None
    ) -> None:
        self.ext = ext
        self.msg = msg
        self.state = state
        self.now = now
        self._who = who
        self.who_loaded = False  # the identity came from the database: cache it
        self._session: Session | None = None
        self._actor: Any = None
        self.in_job = False  # a slow command run by bot.jobs.run_command

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self.ext.db.sessionmaker()
        return self._session

    # -- who is talking ----------------------------------------------------------------

    def who(self) -> dict[str, Any]:
        """``{"pid": person id or None, "roles": [...]}``: cached in Redis per chat user
        (bot.store.WHO_TTL; bind/unbind and role changes drop it, see bot.identity),
        else loaded from the database once and cached when the message finishes."""
        if self._who is not None:
            return self._who
        from services.auth import find_identity

        ident = find_identity(self.session, self.identity_kind, self.msg.app, self.msg.sender)
        pid, roles = None, []
        if ident is not None:
            actor = self.actor_for(ident.person_id)
            if actor is not None:
                pid, roles = actor.person_id, sorted(actor.roles)
        return self.remember(pid, roles)

    def remember(self, pid: int | None, roles: list[str]) -> dict[str, Any]:
        self._who = {"pid": pid, "roles": roles}
        self.who_loaded = True
        return self._who

    def forget_who(self) -> None:
        """Do not cache what this turn learned about the identity."""
        self._who = None
        self.who_loaded = False

    @property
    def identity_kind(self) -> Any:
        from models.identity import IdentityKind

        return IdentityKind.wechat_oa if self.msg.channel == "wechat" else IdentityKind.dingtalk

    @property
    def roles(self) -> set[str]:
        return set(self.who()["roles"])

    def has_role(self, *roles: str) -> bool:
        mine = self.roles
        return "admin" in mine or bool(mine & set(roles))

    def actor_for(self, person_id: int) -> Any:
        from core.auth import load_actor
        from core.errors import Unauthenticated

        try:
            self._actor = load_actor(self.session, person_id)
        except Unauthenticated:
            self._actor = None
        return self._actor

    def actor(self) -> Any:
        """The bound person as a services Actor; raises NotBound when unbound."""
        if self._actor is None:
            pid = self.who()["pid"]
            if pid is None or self.actor_for(pid) is None:
                raise NotBound()
        return self._actor

    # -- flows -------------------------------------------------------------------------

    @property
    def flow(self) -> str | None:
        return self.state.get("flow")

    def start_flow(self, name: str, **slots: Any) -> None:
        self.state.update(flow=name, step=0, slots=slots, v=int(self.state.get("v", 0)) + 1)

    def end_flow(self) -> None:
        for key in ("flow", "step", "slots"):
            self.state.pop(key, None)
        self.state["v"] = int(self.state.get("v", 0)) + 1

    @property
    def slots(self) -> dict[str, Any]:
        return self.state.setdefault("slots", {})

    # -- unit of work ------------------------------------------------------------------

    def commit(self) -> None:
        if self._session is not None:
            self.ext.commit(self._session)

    def close(self, rollback: bool = False) -> None:
        if self._session is not None:
            if rollback:
                self._session.rollback()
            self._session.close()
            self._session = None


class NotBound(DomainError):
    status = 403
    code = "bot_not_bound"
    message = "您还没有绑定账号。请在小程序“我的”页面获取绑定码，然后发送“绑定 绑定码”。"


BUSY_TEXT = "上一条消息还在处理中，请稍候再发送。"
FAILURE_TEXT = "系统繁忙，请稍后再试。"


def handle(ext: Any, msg: Message, now: datetime | None = None) -> Reply:
    """Run one message through the router; never raises for a user's input."""
    started = time.monotonic()
    convo = Conversation(ext.redis, msg.user_key, msg.dedup)
    try:
        claim = convo.claim_waiting()
    except redis.RedisError as exc:  # no dedup, no lock: doing the work could do it twice
        log.warning("bot: Redis unavailable (%s); message not processed", type(exc).__name__)
        return Reply(text=FAILURE_TEXT)
    if claim.status == "dup":
        reply = Reply.from_json(claim.cached)
        reply.replayed = True
        return reply
    if claim.status == "busy":
        return Reply(text=BUSY_TEXT)
    turn = Turn(ext, msg, claim.state, now or utcnow(), claim.who)
    reply, cache = _run(turn, claim.raw_state)
    if cache is not None and not reply.silent and time.monotonic() - started > PASSIVE_BUDGET:
        reply = _deliver_late(ext, msg, reply)
        cache = reply.to_json()  # a retry must not answer a second time
    state = dump_state(turn.state)
    try:
        convo.finish(
            cache,
            UNCHANGED if state and state == claim.raw_state else state,
            turn.who() if turn.who_loaded else None,
            wait=False,
        )
    except Exception:  # the reply is still right; the lock expires by itself
        log.exception("bot: could not store conversation state")
    return reply


def _run(turn: Turn, raw_state: str) -> tuple[Reply, str | None]:
    """Route and commit. Returns the reply and what to cache for duplicates (None: forget
    the dedup key, so a platform retry runs the message again)."""
    from bot import router

    try:
        reply = router.route(turn)
        turn.commit()
        return reply, reply.to_json()
    except DomainError as exc:
        if exc.keep_changes:  # e.g. a failure counter that must survive (as at the API edge)
            turn.commit()
        else:
            turn.close(rollback=True)
        turn.state = _state(raw_state)
        turn.forget_who()  # it may describe a binding that was rolled back: reload next time
        reply = Reply(text=exc.message)
        return reply, reply.to_json()
    except Exception:
        log.exception("bot: %s message failed", turn.msg.channel)
        turn.close(rollback=True)
        turn.state = _state(raw_state)
        turn.forget_who()
        return Reply(text=FAILURE_TEXT), None
    finally:
        turn.close()


def run_deferred(ext: Any, msg: Message, name: str, args: str) -> Reply:
    """A slow command in its job (bot.jobs.run_command): run it as the dialog would have,
    commit, and return the answer to send. Errors a user can act on become the answer;
    others are raised, so the job retries."""
    from bot import router

    turn = Turn(ext, msg, {}, utcnow())
    turn.in_job = True
    cmd = router.named(name)
    try:
        if cmd is None:
            return Reply(text=FAILURE_TEXT)  # a command gone with a deploy
        reply = router.run(turn, cmd, args)
        turn.commit()
        return reply
    except DomainError as exc:
        turn.close(rollback=True)
        return Reply(text=exc.message)
    finally:
        turn.close()


def _state(raw: str) -> dict[str, Any]:
    """The state as loaded (the dialog may have changed its copy before failing)."""
    return orjson.loads(raw) if raw else {}


def _deliver_late(ext: Any, msg: Message, reply: Reply) -> Reply:
    """Too slow for a passive answer: send it through the customer-service API instead."""
    from bot.jobs import enqueue_reply

    session = ext.db.sessionmaker()
    try:
        enqueue_reply(session, msg, reply, key=f"late:{msg.user_key}:{msg.dedup}")
        ext.commit(session)
    except Exception:  # the passive reply may still arrive in time: better than nothing
        log.exception("bot: could not queue a late reply")
        session.rollback()
        return reply
    finally:
        session.close()
    return Reply(silent=True)
