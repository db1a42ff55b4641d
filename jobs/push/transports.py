"""Transports: one interface over the WeChat, DingTalk and console channels.

``transport.send(notification, now)`` returns the platform message id (or None when the
platform gives none) and raises ``PlatformError`` (classified by ``core.platforms``) or
``PushRefused`` (our own rule said no; nothing was sent).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import redis

from core.platforms.dingtalk import content_fingerprint
from models.jobs import Channel, Notification

log = logging.getLogger("zhizhi.push")

SHANGHAI = ZoneInfo("Asia/Shanghai")

#: DingTalk work-notification rules (open.dingtalk.com, 工作通知 "发送限制"):
#: the same content reaches a user once a day; at most 500 messages per user per app a day.
DINGTALK_LIMITS = {"same_content_per_day": 1, "per_user_per_day": 500}


class PushRefused(Exception):
    """A rule on our side refused the send; nothing reached the platform."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Transport(Protocol):
    channel: Channel

    def send(self, n: Notification, now: datetime) -> str | None: ...


class ConsoleTransport:
    """Embedded default without platform credentials: logs what would be sent."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.sent: list[dict[str, Any]] = []

    def send(self, n: Notification, now: datetime) -> str | None:
        record = {"id": n.id, "channel": self.channel.value, "kind": n.kind, "text": n.content.get("text")}
        self.sent.append(record)
        log.info("console push %s -> person %s: %s", n.kind, n.person_id, n.content.get("title"))
        return f"console-{n.id}"


class WeChatTemplateTransport:
    channel = Channel.wechat_template

    def __init__(self, client: Any, mp_app_id: str | None = None) -> None:
        self.client = client
        self.mp_app_id = mp_app_id

    def send(self, n: Notification, now: datetime) -> str | None:
        page = n.content.get("page")
        mini = {"appid": self.mp_app_id, "pagepath": page} if page and self.mp_app_id else None
        msgid = self.client.send_template(
            n.recipient,
            n.template_id,
            n.content.get("oa") or {},
            miniprogram=mini,
            client_msg_id=n.dedup_key,  # WeChat drops a repeat within 10 minutes
        )
        return str(msgid)


class WeChatSubscribeTransport:
    channel = Channel.wechat_subscribe

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, n: Notification, now: datetime) -> str | None:
        self.client.send_subscribe(
            n.recipient, n.template_id, n.content.get("mp") or {}, page=n.content.get("page")
        )
        return None


class WeChatCustomTransport:
    channel = Channel.wechat_custom

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, n: Notification, now: datetime) -> str | None:
        self.client.send_custom_text(n.recipient, f"{n.content['title']}\n{n.content['text']}")
        return None


class DingTalkWorkTransport:
    """工作通知 with DingTalk's daily limits enforced before the call (Redis keys per
    Shanghai day), because DingTalk accepts an over-limit message and drops it silently."""

    channel = Channel.dingtalk_work

    def __init__(self, client: Any, kv: redis.Redis, app_key: str) -> None:
        self.client = client
        self.kv = kv
        self.app_key = app_key

    def send(self, n: Notification, now: datetime) -> str | None:
        msg = {"msgtype": "text", "text": {"content": f"{n.content['title']}\n{n.content['text']}"}}
        day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
        base = f"zhizhi:dingtalk:{self.app_key}:{n.recipient}:{day}"
        once_key, count_key = f"{base}:once:{content_fingerprint(msg)}", f"{base}:count"
        self._reserve(n, once_key, count_key)
        try:
            task_id = self.client.send_work_notification(n.recipient, msg)
        except Exception as exc:
            if not getattr(exc, "ambiguous", False):
                self._release(once_key, count_key)  # certainly not delivered: free the slot
            raise
        return str(task_id)

    def _reserve(self, n: Notification, once_key: str, count_key: str) -> None:
        ttl = int(timedelta(days=2).total_seconds())
        owner = str(n.id).encode()
        if not self.kv.set(once_key, owner, nx=True, ex=ttl) and self.kv.get(once_key) != owner:
            raise PushRefused("相同内容今天已通过钉钉工作通知发送给该用户（钉钉每天限一次）")
        count = self.kv.incr(count_key)
        self.kv.expire(count_key, ttl)
        if count > DINGTALK_LIMITS["per_user_per_day"]:
            self._release(once_key, count_key)
            raise PushRefused("该用户今天的钉钉工作通知已达 500 条上限")

    def _release(self, once_key: str, count_key: str) -> None:
        try:
            self.kv.delete(once_key)
            self.kv.decr(count_key)
        except redis.RedisError:
            log.warning("could not release a DingTalk send slot", exc_info=True)


def transport_for(ext: Any, channel: Channel) -> Transport:
    """The transport for ``channel``; the console transport when the platform's
    credentials are not configured (embedded default, demos)."""
    w, d = ext.settings.wechat, ext.settings.dingtalk
    if channel == Channel.wechat_subscribe and w.get("mp_app_id") and w.get("mp_app_secret"):
        return WeChatSubscribeTransport(ext.wechat_mp())
    if (
        channel in (Channel.wechat_template, Channel.wechat_custom)
        and w.get("app_id")
        and w.get("app_secret")
    ):
        cls = WeChatTemplateTransport if channel == Channel.wechat_template else WeChatCustomTransport
        return (
            cls(ext.wechat_oa(), w.get("mp_app_id"))
            if cls is WeChatTemplateTransport
            else cls(ext.wechat_oa())
        )
    if channel == Channel.dingtalk_work and d.get("app_key") and d.get("app_secret") and d.get("agent_id"):
        return DingTalkWorkTransport(ext.dingtalk(), ext.redis, d["app_key"])
    return CONSOLE.setdefault(channel, ConsoleTransport(channel))


#: One console transport per channel per process; tests and demos read ``.sent``.
CONSOLE: dict[Channel, ConsoleTransport] = {}
